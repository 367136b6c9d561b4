"""Safe by default on a network: loopback only without logins, nothing about the installation before the login,
and the Records page builds its export only when the download is clicked."""

from __future__ import annotations

import subprocess
import tomllib

import pytest
from streamlit import config as streamlit_config

import review.export
from tests.conftest import REPO, run_app
from ui.auth import exposure_refusal, is_loopback

pytestmark = pytest.mark.slow


@pytest.fixture
def served_on():
    """Streamlit's server.address as the app reads it, restored afterwards."""
    before = streamlit_config.get_option("server.address")

    def set_address(address: str) -> None:
        streamlit_config.set_option("server.address", address)

    yield set_address
    streamlit_config.set_option("server.address", before)


@pytest.mark.parametrize(("address", "loopback"), [
    ("127.0.0.1", True), ("127.0.1.1", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("unix:///run/loupe.sock", True), ("", False), ("0.0.0.0", False), ("::", False), ("192.168.1.20", False),
    ("loupe.example.org", False),
])
def test_loopback_addresses(address, loopback):
    assert is_loopback(address) is loopback
    assert (exposure_refusal(address, logins=False) is None) is loopback
    assert exposure_refusal(address, logins=True) is None


def test_make_run_and_the_config_serve_loopback_only():
    dry_run = subprocess.run(["make", "-n", "-o", ".venv/.installed", "-o", "demo-data", "run"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
    command = next(line for line in dry_run.splitlines() if "streamlit run app.py" in line)
    assert "--server.address 127.0.0.1" in command
    config = tomllib.loads((REPO / ".streamlit" / "config.toml").read_text(encoding="utf-8"))
    assert is_loopback(config["server"]["address"])


def test_without_logins_another_address_is_refused(demo_data_dir, monkeypatch, served_on):
    served_on("0.0.0.0")
    at = run_app(monkeypatch, demo_data_dir, LOUPE_AUTH="off")
    assert [title.value for title in at.title] == []
    assert len(at.error) == 1
    shown = at.error[0].value.replace("\\", "")  # the Markdown escapes
    assert "refuses to serve the address 0.0.0.0 without logins" in shown and "LOUPE_AUTH=password" in shown
    assert not at.sidebar.caption and not at.sidebar.text_input, "nothing else is drawn"


def test_with_logins_another_address_is_served(demo_data_dir, monkeypatch, served_on):
    served_on("0.0.0.0")
    at = run_app(monkeypatch, demo_data_dir, LOUPE_AUTH="password")
    assert [title.value for title in at.title] == ["Log in to Loupe"]


def test_the_login_page_says_nothing_about_the_installation(demo_data_dir, monkeypatch):
    at = run_app(monkeypatch, demo_data_dir, LOUPE_AUTH="password")
    assert [title.value for title in at.title] == ["Log in to Loupe"]
    shown = " ".join(element.value for element in [*at.sidebar.caption, *at.sidebar.markdown, *at.sidebar.warning])
    assert "Generator" not in shown and "data:" not in shown and demo_data_dir.name not in shown
    assert "extractive" not in shown


def test_single_user_mode_shows_the_installation_in_the_sidebar(demo_data_dir, monkeypatch):
    at = run_app(monkeypatch, demo_data_dir, LOUPE_AUTH="off")
    shown = " ".join(caption.value for caption in at.sidebar.caption)
    assert "Generator" in shown and "data:" in shown


def test_records_page_builds_the_export_only_when_asked(demo_data_dir, monkeypatch):
    calls = []
    real = review.export.export_bytes

    def spy(*args, **kwargs):
        calls.append(args[1] if len(args) > 1 else kwargs.get("fmt"))
        return real(*args, **kwargs)

    monkeypatch.setattr(review.export, "export_bytes", spy)
    at = run_app(monkeypatch, demo_data_dir, LOUPE_AUTH="off")
    at.switch_page("app_pages/records.py").run()
    assert not at.exception, at.exception
    assert [title.value for title in at.title] == ["Records"]
    at.radio(key="records_export_format").set_value("csv").run()
    at.run()
    assert calls == [], "no export is built while the page is drawn"

    produce = review.export.export_producer(_sessions(), "csv", actor=at.session_state["principal"])
    assert produce().startswith(b"record_id,") and calls == ["csv"]


def _sessions():
    from ui.app_state import app_sessions

    return app_sessions()
