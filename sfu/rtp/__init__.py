"""The packet path: RTP forwarding and rewriting (C and Python twins), RTCP, codecs and payload
parsing, header extensions, NACK, simulcast layers, Opus FEC. Imports nothing else of the
engine but ``sfu.config``/``sfu.errors``: no transport, room or recording."""
