"""A real ComfyUI server in a subprocess, for the integration tests: start, talk to it over HTTP, stop it by its PID.

The server runs from the ComfyUI source folder the user names, with a temporary ``--base-directory``
(models, input, output, temp, user, custom_nodes, its database) so nothing is written into the
ComfyUI install. This pack (and VideoHelperSuite, when given) is linked into its custom_nodes.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

logger = logging.getLogger(__name__)

PACK_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 180.0
# Lines that mean a pack failed to import or something raised; the tests fail on any of them in the log.
LOG_FAILURES = ("IMPORT FAILED", "Traceback (most recent call last)")


def free_port() -> int:
    """A TCP port on the loopback interface that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EventLog:
    """The server's websocket messages to this client (``executing``, ``progress``, ``execution_cached``...), in order.

    Read in a daemon thread through aiohttp (a ComfyUI requirement); it ends when the server closes the socket.
    """

    def __init__(self, url: str, client_id: str) -> None:
        self.url = url.replace("http://", "ws://") + f"/ws?clientId={client_id}"
        self.events: list[dict] = []
        self.connected = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="comfy-events", daemon=True)
        self._thread.start()
        if not self.connected.wait(30):
            raise AssertionError(f"could not open the websocket {self.url}")

    def _run(self) -> None:
        import asyncio

        asyncio.run(self._listen())

    async def _listen(self) -> None:
        import aiohttp

        try:
            async with aiohttp.ClientSession() as session, session.ws_connect(self.url, heartbeat=30) as socket_:
                self.connected.set()
                async for message in socket_:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        with self._lock:
                            self.events.append(json.loads(message.data))
        except aiohttp.ClientError as error:
            logger.warning("websocket closed: %s", error)

    def snapshot(self) -> list[dict]:
        with self._lock:
            return list(self.events)

    def wait_for(self, predicate, timeout: float = 120) -> dict:
        """The first event (from the start of the log) for which ``predicate(event)`` is true; waits for it."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for event in self.snapshot():
                if predicate(event):
                    return event
            time.sleep(0.1)
        raise AssertionError(f"no such event within {timeout:.0f} s; last events: {self.snapshot()[-10:]}")

    def for_prompt(self, prompt_id: str) -> list[dict]:
        """The events of one prompt."""
        return [event for event in self.snapshot() if event.get("data", {}).get("prompt_id") == prompt_id]


class ComfyServer:
    """One ComfyUI process; ``stop()`` ends exactly that process (by its PID), whatever state it is in."""

    def __init__(self, comfyui_dir: Path, base: Path, *, python: str | None = None, vhs_dir: Path | None = None) -> None:
        self.comfyui_dir = Path(comfyui_dir)
        self.base = Path(base)
        self.python = python or sys.executable
        self.vhs_dir = Path(vhs_dir) if vhs_dir else None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.client_id = uuid.uuid4().hex
        self.log_path = self.base.parent / f"{self.base.name}-server.log"
        self.process: subprocess.Popen | None = None
        self.object_info: dict = {}
        self.events: EventLog | None = None

    # -- life cycle -------------------------------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the base directory's folders and link the packs into custom_nodes."""
        for name in ("models", "input", "output", "temp", "user", "custom_nodes"):
            (self.base / name).mkdir(parents=True, exist_ok=True)
        (self.base / "custom_nodes" / "comfyui-lipsync").symlink_to(PACK_ROOT, target_is_directory=True)
        if self.vhs_dir is not None:
            (self.base / "custom_nodes" / "comfyui-videohelpersuite").symlink_to(self.vhs_dir.resolve(), target_is_directory=True)

    def start(self) -> None:
        """Start the server and wait until ``/object_info`` answers; fail if a pack did not import."""
        command = [
            self.python, str(self.comfyui_dir / "main.py"), "--cpu", "--listen", "127.0.0.1", "--port", str(self.port),
            "--base-directory", str(self.base), "--database-url", f"sqlite:///{self.base / 'comfyui.db'}",
            "--disable-auto-launch",
        ]  # fmt: skip
        env = dict(os.environ, LIPSYNC_CACHE_DIR=str(self.base / "lipsync-cache"), PYTHONUNBUFFERED="1")
        env.pop("PYTHONPATH", None)  # the unit tests' fake ComfyUI must not shadow the real one
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                command, cwd=self.comfyui_dir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env
            )
        logger.info("ComfyUI pid %d on %s, log %s", self.process.pid, self.url, self.log_path)
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"ComfyUI exited with code {self.process.returncode} while starting:\n{self.log()[-6000:]}")
            try:
                response = requests.get(f"{self.url}/object_info", timeout=10)
                if response.status_code == 200:
                    self.object_info = response.json()
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(f"ComfyUI did not answer /object_info within {START_TIMEOUT_S:.0f} s:\n{self.log()[-6000:]}")
            time.sleep(0.5)
        self.events = EventLog(self.url, self.client_id)
        self.assert_clean_log()
        missing = [name for name in ("LipSyncLoadWav2Lip", "LipSyncDetectFaces", "LipSyncAllInOne") if name not in self.object_info]
        if missing:
            raise AssertionError(f"the pack's nodes {missing} are not in /object_info:\n{self.log()[-6000:]}")

    def stop(self) -> None:
        """End the server process by its PID: terminate, then kill if it does not exit in 20 s."""
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=20)

    def log(self) -> str:
        """The server's log so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def assert_clean_log(self) -> None:
        """Fail when the log shows a pack that failed to import or a traceback."""
        text = self.log()
        for marker in LOG_FAILURES:
            if marker in text:
                at = text.index(marker)
                raise AssertionError(f"ComfyUI's log contains {marker!r}:\n{text[max(0, at - 3000) : at + 3000]}")

    # -- HTTP API ---------------------------------------------------------------------------------------------------

    def refresh_object_info(self) -> dict:
        """Fetch ``/object_info`` again (model dropdowns follow the folders' contents)."""
        self.object_info = self._get("/object_info").json()
        return self.object_info

    def upload(self, path: Path, name: str | None = None) -> str:
        """Upload a file into input/ through ``/upload/image``; returns the value for a LoadImage/LoadVideo/LoadAudio widget."""
        with open(path, "rb") as handle:
            response = requests.post(
                f"{self.url}/upload/image",
                files={"image": (name or Path(path).name, handle)},
                data={"type": "input", "overwrite": "true"},
                timeout=60,
            )
        assert response.status_code == 200, f"upload of {path} failed: {response.status_code} {response.text}"
        answer = response.json()
        return f"{answer['subfolder']}/{answer['name']}" if answer.get("subfolder") else answer["name"]

    def queue(self, prompt: dict) -> requests.Response:
        """POST the prompt to ``/prompt`` and return the raw response (400 with node_errors when validation refuses it)."""
        return requests.post(f"{self.url}/prompt", json={"prompt": prompt, "client_id": self.client_id}, timeout=60)

    def history(self, prompt_id: str | None = None) -> dict:
        return self._get(f"/history/{prompt_id}" if prompt_id else "/history").json()

    def queue_state(self) -> dict:
        return self._get("/queue").json()

    def interrupt(self) -> None:
        """POST ``/interrupt``: stops the running prompt at its next interruption check."""
        response = requests.post(f"{self.url}/interrupt", timeout=30)
        assert response.status_code == 200, f"/interrupt answered {response.status_code}"

    def submit(self, prompt: dict) -> str:
        """Queue a prompt that must pass validation; returns its prompt id."""
        response = self.queue(prompt)
        refusal = json.dumps(response.json(), indent=1)[:6000] if response.status_code != 200 else ""
        assert response.status_code == 200, f"/prompt refused the prompt ({response.status_code}): {refusal}"
        return response.json()["prompt_id"]

    def wait(self, prompt_id: str, timeout: float = 300) -> dict:
        """Follow ``/history`` until the prompt has finished (done, failed or interrupted); returns its entry."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            entry = self.history(prompt_id).get(prompt_id)
            if entry and entry.get("status", {}).get("completed") is not None and entry["status"].get("status_str") in ("success", "error"):
                return entry
            if self.process is not None and self.process.poll() is not None:
                raise AssertionError(f"ComfyUI exited (code {self.process.returncode}) while running a prompt:\n{self.log()[-6000:]}")
            time.sleep(0.25)
        raise AssertionError(f"prompt {prompt_id} did not finish within {timeout:.0f} s:\n{self.log()[-4000:]}")

    def run(self, prompt: dict, timeout: float = 300) -> dict:
        """Queue a prompt, wait for it, and return its history entry; raise with the server's error when it failed."""
        entry = self.wait(self.submit(prompt), timeout)
        if entry["status"]["status_str"] != "success":
            raise AssertionError(f"the prompt failed: {execution_error(entry)}")
        return entry

    def output_files(self, entry: dict) -> list[Path]:
        """The files the output nodes of a history entry wrote (SaveVideo, SaveImage, VHS Video Combine...)."""
        files = []
        for output in entry.get("outputs", {}).values():
            for key in ("images", "gifs", "videos", "audio"):
                for item in output.get(key, []):
                    if isinstance(item, dict) and item.get("type") == "output":
                        files.append(self.base / "output" / item.get("subfolder", "") / item["filename"])
        return files

    def _get(self, path: str) -> requests.Response:
        response = requests.get(f"{self.url}{path}", timeout=60)
        assert response.status_code == 200, f"GET {path} answered {response.status_code}: {response.text[:2000]}"
        return response


def status_messages(entry: dict, kind: str) -> list[dict]:
    """The payloads of one kind of execution event (execution_cached, execution_error, ...) in a history entry."""
    return [payload for name, payload in entry.get("status", {}).get("messages", []) if name == kind]


def cached_nodes(entry: dict) -> set[str]:
    """Ids of the nodes ComfyUI took from its cache in this run (its ``execution_cached`` event)."""
    return {str(node) for payload in status_messages(entry, "execution_cached") for node in payload.get("nodes", [])}


def execution_error(entry: dict) -> str:
    """The server's error for a failed prompt: node, exception and its traceback."""
    errors = status_messages(entry, "execution_error")
    if not errors:
        return json.dumps(entry.get("status"), indent=1)[:4000]
    error = errors[0]
    return (
        f"node {error.get('node_id')} ({error.get('node_type')}): {error.get('exception_type')}: {error.get('exception_message')}\n"
        + "".join(error.get("traceback", []))
    )
