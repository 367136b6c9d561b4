"""The annotator's loop in a real browser: from a verdict key to the next record fully shown, in milliseconds.

    python bench/review_loop.py [--records 12992] [--steps 20] [--repo PATH] [--chunk-chars 1000 --chunks 4]
                                [--key KEY] [--screenshot FILE] [--json]

On a fresh data directory: writes --records study-like prompt records (the 1,680 mixtral_8_22b records of
../shared/data/kommineni2024 cycled under new names, as bench/import_records.py does), imports them with
`cli.py import` (contexts regrouped into the study's retrieved chunks: 1,000 characters, 4 chunks) and computes
NO support map; starts `streamlit run app.py`, opens the Queue in Debian's Chromium at 1366x768 and presses the
Accept shortcut --steps times, --read-ms after each record is shown (the first one included: an annotator reads
the record the Queue opens on before judging it). Each step is timed in the page, from the
keydown to the first animation frame at which the next record is fully shown: another record's caption, nothing
stale on the page, the app no longer running, the Accept button and the record's passages present. Where the
panel shows a record before its support map is ready (the background worker still on it), the time until the
highlights are drawn is reported too (support_*). Prints p50 / p95 / max ms.

--repo runs another checkout of the project (e.g. `git worktree add /tmp/loupe-before <commit>`) with this
virtualenv: its cli.py imports, its app.py serves. --key is the Accept shortcut as Playwright names it; by
default it is read from the Accept button's label (Alt+1 before the keyboard rework, A after).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.app_server import CHROMIUM_ARGS, SHOWN_JS
from bench.app_server import start_app as start_app_with
from bench.import_records import SHARED_RECORDS, real_papers, synthetic_papers, write_records
from bench.synthetic import Progress

REPO = Path(__file__).resolve().parents[1]
RUN = "study"

# The support map drawn: no "checking in the background" note left, nothing running.
SUPPORT_JS = """() => !document.querySelector('.loupe-support-pending') && !document.querySelector('[data-stale=true]')
  && !document.querySelector('[data-testid=stStatusWidgetRunningIcon], [data-testid=stStatusWidgetRunningManIcon]')
  && performance.now()"""
# Fully shown: another record than `before`, nothing stale, not running, Accept and the passages drawn.
DONE_JS = """(before) => {
  const shown = (SHOWN)();
  if (!shown || shown === before) return false;
  if (document.querySelector('[data-stale=true]')) return false;
  if (document.querySelector('[data-testid=stStatusWidgetRunningIcon], [data-testid=stStatusWidgetRunningManIcon]')) return false;
  const accept = [...document.querySelectorAll('button')].find(b => /^Accept/.test(b.textContent.trim()));
  if (!accept || !document.querySelector('.loupe-passage')) return false;
  return performance.now();
}""".replace("SHOWN", SHOWN_JS)


def environment(repo: Path, data_dir: Path) -> dict[str, str]:
    env = {**os.environ, "LOUPE_DATA_DIR": str(data_dir), "LOUPE_GENERATOR_KIND": "extractive",
           "LOUPE_ANNOTATOR": "bench", "PYTHONPATH": str(repo), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    env.pop("DATABASE_URL", None)
    return env


def import_records(repo: Path, data_dir: Path, folder: Path, chunk_chars: int | None, chunks: int | None) -> float:
    command = [sys.executable, "cli.py", "import", str(folder), "--run", RUN]
    if chunk_chars:
        command += ["--chunk-chars", str(chunk_chars)] + (["--chunks", str(chunks)] if chunks else [])
    started = time.perf_counter()
    subprocess.run(command, cwd=repo, env=environment(repo, data_dir), check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def start_app(repo: Path, data_dir: Path) -> tuple[subprocess.Popen, str]:
    return start_app_with(repo, environment(repo, data_dir), capture=False)

def accept_key(page) -> str:
    """The Accept button's shortcut as Playwright names it, read from its label ("Accept Alt+1", "Accept A")."""
    label = page.get_by_role("button", name=re.compile(r"^Accept")).first.inner_text()
    shortcut = label.replace("Accept", "", 1).strip().replace("⌥", "Alt+").replace(" ", "")
    return shortcut or "Alt+1"


def percentiles(times: list[float], prefix: str = "") -> dict:
    ordered = sorted(times)
    return {f"{prefix}p50_ms": round(statistics.median(ordered), 1),
            f"{prefix}p95_ms": round(ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))], 1),
            f"{prefix}max_ms": round(ordered[-1], 1)}


def drive(url: str, steps: int, key: str | None, screenshot: Path | None, read_ms: int, progress: Progress) -> dict:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1366, "height": 768})
        page.goto(f"{url}/queue")
        page.wait_for_function(DONE_JS, arg="", timeout=300_000, polling="raf")
        key = key or accept_key(page)
        accept = page.get_by_role("button", name=re.compile(r"^Accept")).first
        in_view = accept.evaluate("b => { const r = b.getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }")
        if screenshot:
            page.screenshot(path=str(screenshot))
        page.evaluate("() => document.addEventListener('keydown', () => { window.__pressed = performance.now(); }, true)")
        page.mouse.click(5, 400)  # focus the page, not a widget
        page.wait_for_function(SUPPORT_JS, timeout=300_000, polling="raf")
        page.wait_for_timeout(read_ms)  # the first record is read too
        times, support, shown = [], [], []
        for step in range(steps):
            before = page.evaluate(SHOWN_JS)
            shown.append(before)
            page.keyboard.press(key)
            done = page.wait_for_function(DONE_JS, arg=before, timeout=300_000, polling="raf").json_value()
            pressed = page.evaluate("window.__pressed")
            times.append(done - pressed)
            support.append(page.wait_for_function(SUPPORT_JS, timeout=300_000, polling="raf").json_value() - pressed)
            progress.update(f"step {step + 1}/{steps}: {times[-1]:.0f} ms (support {support[-1]:.0f} ms)")
            page.wait_for_timeout(read_ms)  # an annotator reads; the worker (if any) works ahead meanwhile
        progress.done()
        browser.close()
    return {"steps": steps, "key": key, "read_ms": read_ms, "accept_in_view": bool(in_view), **percentiles(times),
            **percentiles(support, "support_"), "ms": [round(t, 1) for t in times],
            "support_ms": [round(t, 1) for t in support], "records_shown": shown}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--records", type=int, default=12_992)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repo", type=Path, default=REPO, help="the checkout to import with and serve")
    parser.add_argument("--chunk-chars", type=int, default=1000)
    parser.add_argument("--chunks", type=int, default=4)
    parser.add_argument("--read-ms", type=int, default=1000, help="the pause after each record is shown "
                        "(an annotator reading it; default 1000)")
    parser.add_argument("--key", help="the Accept shortcut (default: read from the Accept button)")
    parser.add_argument("--screenshot", type=Path, help="save the first record's page (1366x768) here")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if shutil.which("chromium") is None:
        raise SystemExit("this benchmark drives Debian's chromium, which is not installed")
    progress = Progress()
    repo = args.repo.resolve()
    with tempfile.TemporaryDirectory(prefix="loupe-review-loop-") as workdir:
        folder, data_dir = Path(workdir) / "mixtral_8_22b", Path(workdir) / "data"
        folder.mkdir()
        papers = real_papers(SHARED_RECORDS) or synthetic_papers(60, seed=13)
        write_records(folder, args.records, papers, progress)
        progress.done()
        import_s = import_records(repo, data_dir, folder, args.chunk_chars, args.chunks)
        process, url = start_app(repo, data_dir)
        try:
            results = drive(url, args.steps, args.key, args.screenshot, args.read_ms, progress)
        finally:
            process.terminate()
            process.wait(timeout=30)
    results.update(records=args.records, repo=str(repo), import_s=round(import_s, 1),
                   source="kommineni2024" if SHARED_RECORDS.is_dir() else "synthetic")
    if args.json:
        print(json.dumps(results))
    else:
        print(f"{results['records']} records ({results['source']}), imported in {results['import_s']} s, from {repo}")
        print(f"{args.steps} x {results['key']} (Accept) until the next record is fully shown: "
              f"p50 {results['p50_ms']} ms  p95 {results['p95_ms']} ms  max {results['max_ms']} ms")
        print(f"  with its support map drawn: p50 {results['support_p50_ms']} ms  p95 {results['support_p95_ms']} ms  "
              f"max {results['support_max_ms']} ms  ({args.read_ms} ms reading between steps)")
        print(f"Accept visible without scrolling at 1366x768: {results['accept_in_view']}")
        print("per step ms:", " ".join(f"{t:.0f}" for t in results["ms"]))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
