"""Who may see what (CONTRACT §7) with a real python-socketio client: a
token that expires on a live socket (token:expiring, then unauthorized,
user room left), a private chat room refused, and a user sent away by the
publish API (a server-side disconnect: the client does not reconnect)."""

import base64
import hashlib
import hmac
import json
import threading
import time
import unittest
import urllib.request

import socketio

from test_reconnect import start_server, stop

SECRET = "python-access-test-secret-of-32-bytes!"
KEY = "py-test-key"
WAIT = 8


def token(sub, ttl, **claims):
    """An HS256 JWT signed with SECRET (stdlib only)."""
    b64 = lambda raw: base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    header = b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = b64(json.dumps({"sub": sub, "exp": int(time.time()) + ttl, **claims}).encode())
    signature = hmac.new(SECRET.encode(), f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}.{b64(signature)}"


def post(addr, path, body):
    request = urllib.request.Request(
        f"http://{addr}{path}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        return response.status, json.loads(response.read())


class Access(unittest.TestCase):
    def setUp(self):
        self.proc, self.addr = start_server(extra=["--jwt-secret", SECRET])

    def tearDown(self):
        stop(self.proc)

    def client(self):
        return socketio.Client(reconnection=True, reconnection_delay=0.2, reconnection_delay_max=0.5)

    def test_an_expiring_token_warns_then_drops_the_socket_to_anonymous(self):
        client = self.client()
        seen = {"expiring": threading.Event(), "unauthorized": threading.Event(), "note": threading.Event()}
        messages = {}

        @client.on("token:expiring")
        def expiring(data):
            messages["expiring"] = data
            seen["expiring"].set()

        @client.on("unauthorized")
        def unauthorized(data):
            messages["unauthorized"] = data
            seen["unauthorized"].set()

        @client.on("notification")
        def notification(data):
            seen["note"].set()

        try:
            client.connect(f"http://{self.addr}", auth={"token": token("py-short", 3)}, wait_timeout=5)
            self.assertTrue(seen["expiring"].wait(WAIT), "token:expiring before the end")
            self.assertIn("expiresAt", messages["expiring"])
            self.assertTrue(seen["unauthorized"].wait(WAIT), "unauthorized at the end")
            self.assertEqual(messages["unauthorized"], {"message": "Token expired"})
            post(self.addr, "/api/v1/emit", {"room": "user:py-short", "event": "notification", "data": 1})
            self.assertFalse(seen["note"].wait(0.5), "the user room was left")
            self.assertTrue(client.connected, "still connected, as anonymous")
        finally:
            client.disconnect()

    def test_a_private_room_is_refused(self):
        client = self.client()
        try:
            client.connect(f"http://{self.addr}", auth={"token": token("py-mallory", 600)}, wait_timeout=5)
            ack = client.call("chat:join", {"roomId": "dm-alice-bob"}, timeout=5)
            self.assertEqual(ack, {"error": "not allowed in this room"})
        finally:
            client.disconnect()

    def test_a_user_sent_away_is_disconnected_and_does_not_reconnect(self):
        client = self.client()
        connects = []
        reasons = []
        gone = threading.Event()

        @client.event
        def connect():
            connects.append(time.monotonic())

        @client.event
        def disconnect(reason=None):
            reasons.append(reason)
            gone.set()

        try:
            client.connect(f"http://{self.addr}", auth={"token": token("py-away", 600)}, wait_timeout=5)
            status, body = post(self.addr, "/api/v1/users/py-away/disconnect", {"reason": "test"})
            self.assertEqual((status, body), (202, {"disconnected": 1}))
            self.assertTrue(gone.wait(WAIT), "disconnected")
            self.assertEqual(reasons[0], client.reason.SERVER_DISCONNECT)
            time.sleep(1.5)  # longer than the client's reconnection delay: it must not come back
            self.assertEqual(len(connects), 1, "no reconnect after a server-side disconnect")
        finally:
            client.disconnect()


if __name__ == "__main__":
    unittest.main()
