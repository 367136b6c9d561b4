"""Domain errors of the review database; the UI and the CLI turn them into messages."""


class ReviewError(Exception):
    """Base class: the message is shown to the user as it is."""


class NotFoundError(ReviewError):
    """The record or annotation does not exist."""


class InvalidVerdictError(ReviewError):
    """A verdict is missing what it needs (a correction without text, a rejection without a reason, …)."""


class ConflictError(ReviewError):
    """The annotation changed since it was read (another tab or person saved first); nothing was overwritten."""


class PermissionDeniedError(ReviewError):
    """The acting user's role does not allow this read or write."""


class AuthenticationError(ReviewError):
    """A login failed: unknown name, wrong password, disabled account, or too many recent failures."""
