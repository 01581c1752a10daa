"""The v5.channel.k8s.io frame codec (kubectl exec/attach)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.agent.streams.protocol import wsv5


@given(st.integers(0, 254), st.binary(max_size=4096))
def test_encode_decode_roundtrip(channel: int, data: bytes) -> None:
    frame = wsv5.decode(wsv5.encode(channel, data))
    assert frame == wsv5.Frame(channel, data, closed=False)


@given(st.integers(0, 254))
def test_close_signal_roundtrip(channel: int) -> None:
    assert wsv5.encode_close(channel) == bytes([255, channel])
    assert wsv5.decode(wsv5.encode_close(channel)) == wsv5.Frame(channel, b"", closed=True)


def test_channel_byte_layout() -> None:
    assert wsv5.encode(wsv5.STDOUT, b"hi") == b"\x01hi"
    assert wsv5.decode(b"\x00input") == wsv5.Frame(0, b"input")
    assert wsv5.decode(b"\x02") == wsv5.Frame(2, b"")


@pytest.mark.parametrize("bad", [b"", b"\xff", b"\xff\x00\x00"])
def test_malformed_messages_are_rejected(bad: bytes) -> None:
    with pytest.raises(wsv5.FrameError):
        wsv5.decode(bad)


@pytest.mark.parametrize("channel", [-1, 255, 256])
def test_channel_out_of_range(channel: int) -> None:
    with pytest.raises(wsv5.FrameError):
        wsv5.encode(channel, b"")


def test_resize_parsing() -> None:
    assert wsv5.parse_resize(b'{"Width":120,"Height":40}\n') == (120, 40)
    for bad in (b"nope", b"[1,2]", b'{"Width":-1,"Height":2}', b'{"Width":"x"}'):
        with pytest.raises(wsv5.FrameError):
            wsv5.parse_resize(bad)


def test_exit_status_matches_kubectl_expectations() -> None:
    assert orjson.loads(wsv5.exit_status(0)) == {"metadata": {}, "status": "Success"}
    failed = orjson.loads(wsv5.exit_status(3))
    assert failed["status"] == "Failure" and failed["reason"] == "NonZeroExitCode"
    assert failed["details"]["causes"] == [{"reason": "ExitCode", "message": "3"}]
    other = orjson.loads(wsv5.failure_status("boom"))
    assert other["status"] == "Failure" and other["message"] == "boom" and "details" not in other
