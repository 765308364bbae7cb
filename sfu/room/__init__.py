"""A live room: router, peers and their negotiation, producers, consumers, the signaling
protocol and its messages, events (observer), active speaker, connection quality, SDP checks.
May import ``sfu.transport`` and ``sfu.rtp``; never ``sfu.recording``."""
