"""A real python-socketio client reconnects by itself after roomcast is
stopped with SIGTERM and started again on the same port, over WebSocket and
over HTTP long-polling (CONTRACT §1: no Engine.IO `close` packet, which
python-socketio reads as "the server sent me away")."""

import json
import os
import re
import signal
import subprocess
import threading
import time
import unittest

import socketio

HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.environ.get("ROOMCAST_BIN", os.path.join(HERE, "..", "..", "target", "debug", "roomcast"))
START_TIMEOUT = 15
EXIT_TIMEOUT = 10
RECONNECT_TIMEOUT = 15


def start_server(listen="127.0.0.1:0", extra=()):
    """Starts roomcast; returns (process, "host:port") once it logs its address."""
    proc = subprocess.Popen(
        [BIN, "--listen", listen, "--publish-key", "py-test-key", "--log-format", "json", *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "RUST_LOG": "info"},
        text=True,
    )
    found = {}
    ready = threading.Event()

    def read():
        for line in proc.stdout:
            match = re.search(r'"message":"listening","addr":"([^"]+)"', line)
            if match and not ready.is_set():
                found["addr"] = match.group(1)
                ready.set()
        ready.set()

    threading.Thread(target=read, daemon=True).start()
    if not ready.wait(START_TIMEOUT) or "addr" not in found:
        proc.kill()
        raise AssertionError(f"roomcast did not start on {listen}")
    return proc, found["addr"]


def stop(proc):
    if proc.poll() is None:
        proc.kill()
    proc.wait(EXIT_TIMEOUT)
    proc.stdout.close()


class ReconnectAfterRestart(unittest.TestCase):
    def reconnects(self, transport):
        proc, addr = start_server()
        client = socketio.Client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=0.5)
        connects = []
        reasons = []
        reconnected = threading.Event()

        @client.event
        def connect():
            connects.append(time.monotonic())
            if len(connects) > 1:
                reconnected.set()

        @client.event
        def disconnect(reason=None):
            reasons.append(reason)

        try:
            client.connect(f"http://{addr}", transports=[transport], wait_timeout=5)
            self.assertIsNotNone(client.call("ping", {}, timeout=5), "the first session answers")
            proc.send_signal(signal.SIGTERM)
            self.assertEqual(proc.wait(EXIT_TIMEOUT), 0, "exits 0 on SIGTERM")
            proc, _ = start_server(addr)
            self.assertTrue(
                reconnected.wait(RECONNECT_TIMEOUT),
                f"{transport}: reconnected by itself within {RECONNECT_TIMEOUT} s (disconnect reasons: {reasons})",
            )
            self.assertNotIn(client.reason.SERVER_DISCONNECT, reasons)
            self.assertIsNotNone(client.call("ping", {}, timeout=5), "the new session answers")
        finally:
            client.disconnect()
            stop(proc)

    def test_websocket_client_reconnects_after_sigterm(self):
        self.reconnects("websocket")

    def test_polling_client_reconnects_after_sigterm(self):
        self.reconnects("polling")


if __name__ == "__main__":
    unittest.main()
