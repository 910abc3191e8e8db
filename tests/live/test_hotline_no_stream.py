"""The 12345 system's token pulls and is pushed to: it opens no live stream (its rooms would bring it every case of the
city): live/rooms.LIVE_ROLES leaves it out, as it leaves out a device; a duty officer's token still connects."""
from __future__ import annotations


def test_a_hotline_token_is_refused_the_live_stream(demo_app, token_for):
    live = demo_app.extensions["ucc_live"]
    hotline = live.socketio.test_client(demo_app, namespace="/live", auth={"token": token_for("hotline")})
    officer = live.socketio.test_client(demo_app, namespace="/live", auth={"token": token_for("duty_officer")})
    try:
        assert not hotline.is_connected("/live")
        assert officer.is_connected("/live")
    finally:
        for client in (hotline, officer):
            if client.is_connected("/live"):
                client.disconnect(namespace="/live")
