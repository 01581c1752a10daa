"""SPDY/3.1 framing for port-forward: frames, header blocks, the dictionary."""

from __future__ import annotations

import hashlib
import struct
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubelite.agent.streams.protocol import spdy

header_names = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=20)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=40)


def test_dictionary_is_the_spdy3_one() -> None:
    d = spdy.DICTIONARY
    assert len(d) == 1423
    assert d.startswith(b"\x00\x00\x00\x07options\x00\x00\x00\x04head")
    assert d.endswith(b"charset=utf-8charset=iso-8859-1,utf-,*,enq=0.")
    assert zlib.adler32(d) == 0xE3C6A7C2  # the DICTID kubectl puts in its zlib header
    assert hashlib.sha256(d).hexdigest().startswith("51d27341")


def test_decodes_a_header_block_compressed_by_kubectl() -> None:
    # kubectl 1.32's first SYN_STREAM header block (error stream for port 8080), as seen on the wire
    block = bytes.fromhex(
        "78f9e3c6a7c202253a703a2b294a4dcc8516"
        "25aca9a08086"
        "14cb45e01c60616061c0c0c0c0590489c64c50f266340000"
        "0000ffff"
    )
    headers = spdy.HeaderCodec().decompress(block)
    assert headers == {"streamtype": "error", "port": "8080", "requestid": "0"}


@given(st.dictionaries(header_names, header_values, max_size=8), st.integers(1, 5))
def test_header_blocks_roundtrip_across_one_context(headers: dict[str, str], repeat: int) -> None:
    tx, rx = spdy.HeaderCodec(), spdy.HeaderCodec()
    for _ in range(repeat):  # one compression context per direction for the whole connection
        assert rx.decompress(tx.compress(headers)) == headers


@given(
    st.lists(st.tuples(st.integers(1, 2**31 - 1), st.binary(max_size=300), st.booleans()), max_size=10),
    st.data(),
)
def test_data_frames_survive_any_chunking(frames: list[tuple[int, bytes, bool]], data: st.DataObject) -> None:
    wire = b"".join(spdy.encode_data(sid, payload, fin) for sid, payload, fin in frames)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=6)))
    parser, got = spdy.FrameParser(), []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        got.extend(parser.feed(wire[start:end]))
    assert [(f.stream_id, f.data, f.fin) for f in got if isinstance(f, spdy.DataFrame)] == frames
    assert not parser.buffer


def test_control_frames() -> None:
    codec = spdy.HeaderCodec()
    block = codec.compress({"streamtype": "data", "port": "80", "requestid": "1"})
    (syn,) = spdy.FrameParser().feed(spdy.encode_syn_stream(3, block))
    assert isinstance(syn, spdy.ControlFrame) and syn.type == spdy.SYN_STREAM
    parsed = spdy.parse_syn_stream(syn)
    assert parsed.stream_id == 3 and not parsed.fin
    assert spdy.HeaderCodec().decompress(parsed.header_block)["port"] == "80"
    reply = spdy.encode_syn_reply(3, b"")
    assert reply[:4] == b"\x80\x03\x00\x02" and struct.unpack(">I", reply[8:12])[0] == 3
    (ping,) = spdy.FrameParser().feed(spdy.encode_ping(7))
    assert isinstance(ping, spdy.ControlFrame) and spdy.parse_stream_id(ping) == 7
    (rst,) = spdy.FrameParser().feed(spdy.encode_rst_stream(5, spdy.CANCEL))
    assert isinstance(rst, spdy.ControlFrame) and rst.type == spdy.RST_STREAM
    assert spdy.parse_stream_id(rst) == 5
    assert spdy.encode_goaway(9)[:4] == b"\x80\x03\x00\x07"
    assert spdy.encode_window_update(1, 100)[:4] == b"\x80\x03\x00\x09"


def test_errors() -> None:
    with pytest.raises(spdy.ProtocolError):
        spdy.FrameParser().feed(b"\x80\x02\x00\x01\x00\x00\x00\x00")  # SPDY/2
    with pytest.raises(spdy.ProtocolError):
        spdy.HeaderCodec().decompress(b"not zlib")
    with pytest.raises(spdy.ProtocolError):
        spdy.unpack_headers(b"\x00\x00\x00\x01\x00\x00\x00\x09abc")
    with pytest.raises(spdy.ProtocolError):
        spdy.encode_data(0, b"")


@given(st.dictionaries(header_names, header_values, max_size=8))
def test_uncompressed_blocks_roundtrip(headers: dict[str, str]) -> None:
    assert spdy.unpack_headers(spdy.pack_headers(headers)) == headers
