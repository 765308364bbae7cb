// Simulcast and the size each remote video is shown at.
//
// The camera goes out as three VP8 layers (quarter, half and full resolution, each with
// its rid); the SFU sends every subscriber the layer that fits its downlink and the size
// it shows the video at, which this page reports with `video-size` messages. A screen
// share is one high-resolution layer at a low frame rate (text stays sharp).

export const CAMERA_ENCODINGS = [
  { rid: "q", scaleResolutionDownBy: 4, maxBitrate: 150_000 },
  { rid: "h", scaleResolutionDownBy: 2, maxBitrate: 500_000 },
  { rid: "f", maxBitrate: 1_500_000 },
];

export const SCREEN_ENCODINGS = [{ maxBitrate: 1_500_000, maxFramerate: 15 }];

/** Reports each remote video's shown height (device pixels) when it changes by a sixth or more. */
export class VideoSizeHints {
  constructor(send) {
    this.send = send;
    this.sent = new Map(); // track id -> height last reported
  }

  /** A new peer connection: the server knows nothing of our sizes yet. */
  reset() {
    this.sent.clear();
  }

  /** `sizes`: [trackId, heightInDevicePixels] for every remote video tile now. */
  update(sizes) {
    for (const [trackId, height] of sizes) {
      const last = this.sent.get(trackId);
      if (last !== undefined && Math.abs(height - last) <= Math.max(last, 1) / 6) continue;
      if (this.send({ type: "video-size", track_id: trackId, height })) this.sent.set(trackId, height);
    }
  }
}
