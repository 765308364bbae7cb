// Recovery from a media outage on the SAME peer connection: an ICE restart (issue 24;
// the server's half is sfu/transport/ice_restart.py).
//
// When the connection goes `disconnected` (Chromium: ~5-7 s without an answer to its consent
// checks) or `failed`, the page calls `restartIce()` and offers again over the signaling
// socket, which a UDP outage leaves alone; the server answers with fresh ICE credentials of its
// own and both sides check again, while the DTLS session, every track and every subscription
// stay: nothing to rejoin, no new keyframes to wait for. The page leads, as JSEP has it: it is
// the side whose network moved (only it can gather its new addresses), and the server is the
// impolite side of glare, so its own offers never wait on ours.
//
// A full rejoin (a new connection, as a reload would give, without the reload) only when the
// restart did not work: no `connected` within RESTART_TIMEOUT_MS of it, or the server refused
// it. A long outage thus ends in a rejoin by itself, with the reconnect backoff of room.js.

import { state } from "./room_state.js";

export const RESTART_TIMEOUT_MS = 5000;

/** Watch `pc` (generation `gen`): `restart()` restarts ICE, `rejoin(detail)` starts over. */
export function watchIce(pc, gen, { restart, rejoin }) {
  let timer = null; // set from a restart until `connected`
  const current = () => gen === state.generation && state.pc === pc;
  pc.addEventListener("connectionstatechange", () => {
    const s = pc.connectionState;
    if (!current() || s === "connected") {
      clearTimeout(timer);
      timer = null;
      if (s === "connected") state.attempt = 0;
      return;
    }
    if ((s === "disconnected" || s === "failed") && timer === null) {
      restart();
      timer = setTimeout(() => {
        if (current() && pc.connectionState !== "connected") rejoin("The media connection dropped.");
      }, RESTART_TIMEOUT_MS);
    }
  });
}

/** An `error` the server sent while our restart offer was pending: it refused the restart. */
export function restartRefused(code) {
  return state.restartPending && ["invalid_sdp", "negotiation_failed", "invalid_state", "internal_error"].includes(code);
}
