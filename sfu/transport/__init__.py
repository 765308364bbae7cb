"""The media transport of each peer: ICE (ports, shared-port demux, candidate policy), our own UDP
sockets, SRTP and batched packet I/O (native and pure-Python twins), TURN credentials, and the
one module that reaches into aiortc/aioice private parts. May import ``sfu.rtp``; never
``sfu.room`` or ``sfu.recording``."""
