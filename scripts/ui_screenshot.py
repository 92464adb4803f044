"""What a user sees after `lottery ui`: start it on a results folder, load the link it prints in
headless Chromium, save a screenshot (docs/images/ui_sweep_view.png by default), stop the UI.

    python -m scripts.ui_screenshot --results-dir lottery-runs --experiment demo [--sweep NAME] [--out PNG]

Chromium is installed with apt-get when it is missing (as root; Debian's package `chromium`). The
UI binds 127.0.0.1 on a free port; nothing else is started or left running.
"""
import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def chromium() -> str:
    """The Chromium binary, installed with apt-get when missing."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if found := shutil.which(name):
            return found
    if os.geteuid() != 0:
        sys.exit("no Chromium here: install it (Debian: sudo apt-get install -y chromium) and run again")
    subprocess.run(["apt-get", "update"], check=True, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "chromium"], check=True, stdout=subprocess.DEVNULL)
    return shutil.which("chromium") or sys.exit("apt-get installed no chromium binary")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for(port: int, ui: subprocess.Popen, seconds: float = 120) -> None:
    deadline = time.time() + seconds
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2):
                return
        except OSError:
            if ui.poll() is not None or time.time() > deadline:
                sys.exit("the MLflow UI did not start")
            time.sleep(0.5)


def _as_fds_3_and_4(reads: int, writes: int) -> None:
    """In Chromium's process, before exec: its DevTools pipe on fds 3 (it reads) and 4 (it writes)."""
    import fcntl

    reads, writes = fcntl.fcntl(reads, fcntl.F_DUPFD, 10), fcntl.fcntl(writes, fcntl.F_DUPFD, 10)  # not 3 or 4
    os.dup2(reads, 3)
    os.dup2(writes, 4)


class DevTools:
    """Chromium's DevTools protocol over --remote-debugging-pipe (fd 3: commands in, fd 4: answers
    out, NUL-separated JSON): no websocket library needed."""

    def __init__(self, browser: str, profile: str):
        to_chrome_r, self._w = os.pipe()
        self._r, from_chrome_w = os.pipe()
        self.process = subprocess.Popen(
            [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars",
             f"--user-data-dir={profile}", "--remote-debugging-pipe", "about:blank"],
            pass_fds=(3, 4), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=lambda: _as_fds_3_and_4(to_chrome_r, from_chrome_w))
        os.close(to_chrome_r)
        os.close(from_chrome_w)
        self._buffer = b""
        self._id = 0

    def _message(self) -> dict:
        while b"\0" not in self._buffer:
            chunk = os.read(self._r, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its DevTools pipe")
            self._buffer += chunk
        raw, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, session: str | None = None, **params) -> dict:
        self._id += 1
        message = {"id": self._id, "method": method, "params": params, **({"sessionId": session} if session else {})}
        os.write(self._w, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._message()
            if answer.get("id") == self._id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer.get("result", {})

    def close(self) -> None:
        try:
            self.call("Browser.close")
        except (RuntimeError, OSError):
            pass
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
        os.close(self._w)
        os.close(self._r)


# a browser's first visit to a local MLflow 3.17 UI opens the Assistant panel over a third of the page
# (localStorage mlflow.assistant.fab.autoOpenedOnFirstLoad_v1); a user closes it once, we say so first
BEFORE_PAGE = "localStorage.setItem('mlflow.assistant.fab.autoOpenedOnFirstLoad_v1', 'true');"
READY = "document.body.innerText.includes('matching run')"


def screenshot(browser: str, url: str, out: Path, size: str, timeout_s: float, settle_s: float = 3.0) -> None:
    """Load `url` in a fresh headless Chromium profile (the Assistant panel closed), wait until the
    runs table says how many runs match, and save a PNG of the window."""
    import base64

    width, height = (int(v) for v in size.split(","))
    with tempfile.TemporaryDirectory() as profile:
        tools = DevTools(browser, profile)
        try:
            page = next(t for t in tools.call("Target.getTargets")["targetInfos"] if t["type"] == "page")
            session = tools.call("Target.attachToTarget", targetId=page["targetId"], flatten=True)["sessionId"]
            tools.call("Page.enable", session)
            tools.call("Page.addScriptToEvaluateOnNewDocument", session, source=BEFORE_PAGE)
            tools.call("Emulation.setDeviceMetricsOverride", session, width=width, height=height,
                       deviceScaleFactor=1, mobile=False)
            tools.call("Page.navigate", session, url=url)
            deadline = time.time() + timeout_s
            while not tools.call("Runtime.evaluate", session, expression=READY)["result"].get("value"):
                if time.time() > deadline:
                    sys.exit(f"the runs table did not appear in {timeout_s:g} s: {url}")
                time.sleep(0.5)
            time.sleep(settle_s)   # column widths and the sort settle after the rows arrive
            data = tools.call("Page.captureScreenshot", session, format="png")["data"]
            out.write_bytes(base64.b64decode(data))
        finally:
            tools.close()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results-dir", default="lottery-runs")
    parser.add_argument("--experiment", default="demo")
    parser.add_argument("--sweep", default=None, help="default: the experiment's newest sweep")
    parser.add_argument("--out", default=str(ROOT / "docs" / "images" / "ui_sweep_view.png"))
    parser.add_argument("--window-size", default="1600,900")
    parser.add_argument("--timeout", type=float, default=120, help="seconds to wait for the runs table")
    args = parser.parse_args(argv)
    browser = chromium()
    out = Path(args.out).resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [sys.executable, "-m", "pipelines.cli", "ui", "--port", str(port), "--results-dir", args.results_dir,
               "--experiment", args.experiment, *(["--sweep", args.sweep] if args.sweep else [])]
    ui = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True, start_new_session=True)
    try:
        first = ui.stdout.readline().strip()
        if not first.startswith("MLflow UI on "):
            sys.exit(f"lottery ui said: {first or 'nothing'}")
        url = first.removeprefix("MLflow UI on ").split(" ")[0]
        wait_for(port, ui)
        screenshot(browser, url, out, args.window_size, args.timeout)
    finally:
        os.killpg(ui.pid, signal.SIGTERM)
        try:
            ui.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(ui.pid, signal.SIGKILL)
    print(json.dumps({"url": url, "screenshot": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
