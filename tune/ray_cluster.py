"""Which Ray a sweep runs on: a local Ray of its own, or a cluster that answers at `--address`.

    own = init_ray(None)              # always a new in-process Ray on this machine
    probe_address("10.0.0.10:6379")   # LotteryError within seconds unless a Ray GCS answers there
    own = init_ray("10.0.0.10:6379")  # join it (False: a Ray already initialised is used as it is)

The local default never joins a cluster that `ray start` left on this machine: plain `ray.init()`
reads the last `ray start`'s address file (`/tmp/ray/ray_current_cluster`) and joins that cluster
when it is alive, or waits on it for minutes when it died; `ray.init(address="local")` always
starts a new one.

Token authentication (Ray >= 2.52; on by default for clusters started where a token exists): a
client needs `RAY_AUTH_MODE=token` and the cluster's token (`RAY_AUTH_TOKEN`, the file named by
`RAY_AUTH_TOKEN_PATH`, or `~/.ray/auth_token`). Ray itself turns token mode on only for a cluster
it finds on this machine (`ray.init(address="auto")`, `ray start --head`), never for an explicit
address, so that a token is not sent to whatever host an address names. We follow the same rule:
an address on this machine that refuses an unauthenticated client is retried with this machine's
token (before it is probed, as `ray.init(address="auto")` does); any other address that wants a
token gets one line saying what to set.
"""
import logging
import os
import socket
import threading

from lottery_core.errors import LotteryError, first_line

AUTH_MODE = "RAY_AUTH_MODE"
TOKEN_HELP = ("set RAY_AUTH_MODE=token and the cluster's token: RAY_AUTH_TOKEN=<token> (or "
              "RAY_AUTH_TOKEN_PATH=<file>, or the file ~/.ray/auth_token); `ray get-auth-token` on the "
              "head node prints it")
START_HELP = ("start one with `ray start --head` or `ray up tune/cluster/<file>.yaml`, or leave --address "
              "and RAY_ADDRESS unset for a local Ray")


def init_ray(address: str | None) -> bool:
    """Join `address`, or start a new local Ray sized to this machine (no dashboard). Returns whether
    this call started (and so should shut down) Ray; an already initialised Ray is used as it is."""
    import ray
    from ray.exceptions import AuthenticationError

    if ray.is_initialized():
        return False
    try:
        if address:
            ray.init(address=address, log_to_driver=False)
        else:
            # "local": never the cluster named by a `ray start` address file; Ray counts this
            # machine's CPUs and GPUs itself (cgroup limits included)
            ray.init(address="local", include_dashboard=False, log_to_driver=False)
    except AuthenticationError as err:
        raise LotteryError(f"the Ray cluster at {address} refused this client's token ({first_line(err)}); "
                           f"{TOKEN_HELP}") from None
    except ConnectionError as err:
        raise LotteryError(f"cannot join the Ray cluster at {address}: {first_line(err)}") from None
    return True


def probe_address(address: str, timeout_s: float = 3.0) -> None:
    """Fail within seconds when no Ray cluster answers at `address` (host:port or ray://host:port).

    First a TCP connection (refused or timed out: nothing there), then, for a GCS address, a GCS
    client in a thread with a time limit (a port that answers but is not Ray, e.g. a proxy). A GCS
    that wants a token: see the module's docstring. `auto` (a cluster started on this machine with
    `ray start`) is left to `ray.init`, which applies Ray's own token rule to it.
    """
    if address in ("auto", "local"):
        return
    hostport = address.split("://", 1)[-1].rstrip("/")
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise LotteryError(f"Ray address {address!r} is not host:port (or ray://host:port, or auto)")
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            pass
    except OSError as err:
        reason = err.strerror or type(err).__name__
        raise LotteryError(f"no Ray cluster answers at {address} ({reason} after at most {timeout_s:.0f} s); "
                           f"{START_HELP}") from None
    if "://" in address:
        return
    if is_this_machine(host):
        enable_local_token()  # Ray's rule for a cluster on this machine
    problem = _gcs_problem(hostport, timeout_s)
    if problem and _wants_token(problem):
        refused = "refused this machine's token" if token_mode() else "requires token authentication"
        raise LotteryError(f"the Ray cluster at {address} {refused}: {TOKEN_HELP}")
    if problem:
        raise LotteryError(f"no Ray cluster answers at {address} ({problem}); {START_HELP}")


def token_mode() -> bool:
    """Whether this process speaks to Ray with a token (RAY_AUTH_MODE=token)."""
    return os.environ.get(AUTH_MODE, "").lower() == "token"


def enable_local_token() -> bool:
    """Turn token mode on, as `ray start --head` and `ray.init(address="auto")` do, when RAY_AUTH_MODE
    is unset and a token is on this machine. Returns whether token mode is now on."""
    if os.environ.get(AUTH_MODE) is not None:
        return token_mode()
    try:
        from ray._private.authentication.authentication_token_setup import (
            maybe_enable_token_auth_if_token_available,
        )
    except ImportError:  # a Ray without token authentication
        return False
    quiet = logging.getLogger("ray._private.authentication.authentication_token_setup")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # Ray's warning says what our docstring says
    try:
        return bool(maybe_enable_token_auth_if_token_available(warn_if_disabled=False))
    finally:
        quiet.setLevel(level)


def is_this_machine(host: str) -> bool:
    """Whether `host` (a name or an IP) is this machine: loopback, its name, or one of its addresses."""
    try:
        wanted = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except OSError:
        return False
    if any(ip.startswith("127.") or ip == "::1" for ip in wanted):
        return True
    mine = set()
    for name in {socket.gethostname(), socket.getfqdn()}:
        try:
            mine |= {info[4][0] for info in socket.getaddrinfo(name, None)}
        except OSError:
            pass
    try:
        import ray._private.services as services

        mine.add(services.get_node_ip_address())
    except Exception:
        pass
    return bool(wanted & mine)


def _wants_token(problem: str) -> bool:
    text = problem.lower()
    return "authtoken" in text or "unauthenticated" in text or "authentication" in text


def _gcs_problem(hostport: str, timeout_s: float) -> str | None:
    """None when a Ray GCS answers at host:port within the time limit, else what went wrong."""
    outcome: list = []

    def connect():
        try:
            import ray._raylet

            ray._raylet.GcsClient(address=hostport)
            outcome.append(None)
        except Exception as err:
            outcome.append(f"something answers, but not a Ray GCS: {first_line(err, 120)}")

    worker = threading.Thread(target=connect, daemon=True)  # the GCS client retries for ~40 s
    worker.start()
    worker.join(timeout_s + 2)
    return outcome[0] if outcome else f"no Ray GCS reply within {timeout_s + 2:.0f} s"
