"""Every failure the plugin reports: exception type -> one-line message -> exit code, in one place.

Commands raise these; ``exits.report`` is the only place that turns them into stderr text and an exit code,
so the exit-code table in README.md and this module are the single source of truth.
"""

# Exit codes (documented in README.md, "Exit codes").
OK = 0
INTERNAL = 1          # a bug: unexpected exception (traceback only with -v >= 9)
BAD_INPUT = 2         # invalid flags/arguments/files, unknown VM/namespace/StorageClass/plan
PREFLIGHT = 3         # preflight found a blocking problem; nothing was written
MIGRATION_FAILED = 4  # the migration ran and at least one disk failed
CANCELED = 5          # the migration was canceled (or rolled back by request)
API_ERROR = 6         # cannot reach / authenticate to the API server, or it answered with an error
FORBIDDEN = 7         # RBAC denied a request the command needs
INTERRUPTED = 130     # SIGINT while waiting; the migration goes on in the cluster
TERMINATED = 143      # SIGTERM while waiting


class VmStorageError(Exception):
    """Base: ``message`` is one line naming the problem and the fix."""

    exit_code = INTERNAL

    def __init__(self, message, hint=None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def line(self):
        return f"{self.message}; {self.hint}" if self.hint else self.message


class BadInput(VmStorageError):
    exit_code = BAD_INPUT


class NotFoundInput(BadInput):
    """A user-named object (VM, namespace, StorageClass, plan) does not exist."""


class PreflightRefused(VmStorageError):
    exit_code = PREFLIGHT

    def __init__(self, message, hint=None, findings=None):
        super().__init__(message, hint)
        self.findings = findings or []


class MigrationFailed(VmStorageError):
    exit_code = MIGRATION_FAILED


class MigrationCanceled(VmStorageError):
    exit_code = CANCELED


class ApiError(VmStorageError):
    """The API server answered with an error status (or could not be reached: ``status`` is None)."""

    exit_code = API_ERROR

    def __init__(self, message, status=None, reason=None, body=None, hint=None):
        super().__init__(message, hint)
        self.status = status
        self.reason = reason
        self.body = body or {}


class ConnectionFailed(ApiError):
    """No HTTP answer at all: refused, DNS, TLS handshake, timeout."""


class NotFound(ApiError):
    pass


class Conflict(ApiError):
    """409: AlreadyExists or a resourceVersion / JSON-patch ``test`` conflict."""


class Forbidden(ApiError):
    exit_code = FORBIDDEN


class Unauthorized(ApiError):
    pass


class Invalid(ApiError):
    """422 from admission or the CRD schema."""


class Interrupted(VmStorageError):
    exit_code = INTERRUPTED


def api_error_for(status, message, reason=None, body=None):
    """Map an HTTP status to the narrowest ApiError subclass."""
    cls = {401: Unauthorized, 403: Forbidden, 404: NotFound, 409: Conflict, 422: Invalid}.get(status, ApiError)
    hint = {
        401: "check the token or client certificate of the kubeconfig user (or log in again)",
        403: "ask a cluster admin for the permissions listed in README.md (RBAC), or use --as",
    }.get(status)
    return cls(message, status=status, reason=reason, body=body, hint=hint)
