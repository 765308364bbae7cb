// Local media for the room: camera + microphone with graceful fallbacks, screen capture.

const VIDEO = { width: { ideal: 1280 }, height: { ideal: 720 }, frameRate: { ideal: 24, max: 30 } };
const AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

/**
 * Ask for camera and microphone. Returns {stream, mic, cam, problem}: whatever we could get
 * (both, one of them, or nothing) and a readable sentence when something is missing.
 */
export async function getLocalMedia() {
  const stream = new MediaStream();
  if (!navigator.mediaDevices?.getUserMedia) {
    return { stream, mic: null, cam: null, problem: "This browser can't share a camera or microphone here, so you joined to watch and listen." };
  }
  const attempts = [{ audio: AUDIO, video: VIDEO }, { audio: AUDIO }, { video: VIDEO }];
  let lastError = null;
  for (const constraints of attempts) {
    try {
      const got = await navigator.mediaDevices.getUserMedia(constraints);
      got.getTracks().forEach((t) => stream.addTrack(t));
      break;
    } catch (e) {
      lastError = e;
      if (e?.name === "NotAllowedError" || e?.name === "SecurityError") break;  // asking again won't help
    }
  }
  const mic = stream.getAudioTracks()[0] || null;
  const cam = stream.getVideoTracks()[0] || null;
  let problem = null;
  if (!mic && !cam) {
    problem = lastError?.name === "NotAllowedError"
      ? "Camera and microphone access was blocked, so you joined to watch and listen. Allow access in the address bar and reload to take part."
      : "We couldn't find a camera or microphone, so you joined to watch and listen.";
  } else if (!cam) {
    problem = "No camera available: others will hear you but not see you.";
  } else if (!mic) {
    problem = "No microphone available: others will see you but not hear you.";
  }
  return { stream, mic, cam, problem };
}

/** A fresh camera track (after Camera Off stopped the previous one). */
export async function getCamera() {
  const s = await navigator.mediaDevices.getUserMedia({ video: VIDEO });
  return s.getVideoTracks()[0];
}

/** A screen capture track, or null when the user cancels. */
export async function getScreen() {
  if (!navigator.mediaDevices?.getDisplayMedia) throw new Error("Screen sharing isn't supported in this browser.");
  try {
    const s = await navigator.mediaDevices.getDisplayMedia({ video: { frameRate: { ideal: 15, max: 30 } }, audio: false });
    const track = s.getVideoTracks()[0];
    if (track && "contentHint" in track) track.contentHint = "detail";
    return track || null;
  } catch (e) {
    if (e?.name === "NotAllowedError" || e?.name === "AbortError") return null;
    throw e;
  }
}
