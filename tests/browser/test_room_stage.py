"""The stage shows people large, and the SFU sends each tile the layer its size calls for
(issue 24): a 1:1 puts the other person on the whole stage with ourselves in a corner, a
gallery grows its tiles to fill the stage, at desktop and phone sizes, and a window resize lays
it out again. Dynacast: while everyone shows the mentor small, the mentor's browser stops
encoding the 720p layer; a learner going full screen brings it back within seconds.
Each participant in their own Chromium process; sizes are measured on the page."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.browser.conftest import ARTIFACTS, Api
from tests.browser.room_participants import (
    HEIGHT_FROM,
    Participant,
    class_with_learners,
    everyone_decodes_everyone,
    poll,
)

pytestmark = pytest.mark.browser

# the stage's drawing area and every tile on it, in CSS pixels
BOXES = """() => {
  const box = (el) => { const r = el.getBoundingClientRect(); return {x: r.x, y: r.y, w: r.width, h: r.height}; };
  const grid = document.querySelector("#video-grid");
  const controls = document.querySelector("#controls");
  return {
    mode: grid.dataset.mode,
    stage: box(grid),
    viewport: {w: window.innerWidth, h: window.innerHeight},
    controls: box(controls),
    leave: box(document.querySelector("#btn-leave")),
    tiles: [...document.querySelectorAll("[data-tile]")].map((el) => ({
      key: el.dataset.tile, role: el.dataset.role, local: el.dataset.local === "true",
      source: el.dataset.source, place: el.dataset.place, box: box(el), video: box(el.querySelector("video")),
    })),
  };
}"""

# bytes sent per rid by the page's camera sender
BYTES_SENT = """async () => {
  const out = {};
  (await window.__room.pc.getStats()).forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video" && s.rid) out[s.rid] = s.bytesSent || 0;
  });
  return out;
}"""

# the id of a publisher's track as this page knows it
TRACK_OF = """([peerId, source]) => {
  const p = window.__room.state.participants.get(peerId);
  const t = p && p.tracks.find((x) => x.source === source);
  return t ? t.id : null;
}"""

SIZES = "() => window.__room.sizes"

# which of the page's camera encodings are switched on (q, h, f)
ACTIVE = "() => window.__room.state.local.camTx.sender.getParameters().encodings.map((e) => e.active !== false)"

# the top layer as the page's camera encodes it now: its height and what limits it
TOP_LAYER = """async () => {
  let out = {height: 0, limit: null};
  (await window.__room.pc.getStats()).forEach((s) => {
    if (s.type === "outbound-rtp" && s.kind === "video" && s.rid === "f")
      out = {height: s.frameHeight || 0, limit: s.qualityLimitationReason || null};
  });
  return out;
}"""


def gets_top_layer(viewer: Participant, publisher: Participant) -> bool:
    """``viewer`` decodes ``publisher``'s camera in 720 rows, or in the top layer's rows when
    the publisher's browser is scaling that layer down for want of CPU (Chrome does so on this
    shared 2-core machine under load: 540 rows): the layer is right, the encoder is starved."""
    got = int(viewer.page.evaluate(HEIGHT_FROM, publisher.peer_id))
    if got >= 720:
        return True
    top = publisher.page.evaluate(TOP_LAYER)
    return bool(top["limit"] == "cpu" and top["height"] > 360 and got >= top["height"])


def top_layer_details(viewer: Participant, publisher: Participant) -> dict[str, Any]:
    return {
        "decoded": viewer.page.evaluate(HEIGHT_FROM, publisher.peer_id),
        "top layer": publisher.page.evaluate(TOP_LAYER),
        "bytes": publisher.page.evaluate(BYTES_SENT),
    }


def area(box: dict[str, float]) -> float:
    return float(box["w"] * box["h"])


def inside(box: dict[str, float], outer: dict[str, float], slack: float = 1.0) -> bool:
    return (
        box["x"] >= outer["x"] - slack
        and box["y"] >= outer["y"] - slack
        and box["x"] + box["w"] <= outer["x"] + outer["w"] + slack
        and box["y"] + box["h"] <= outer["y"] + outer["h"] + slack
    )


def settled(p: Participant, mode: str, count: int) -> dict[str, Any]:
    """The page's layout once it shows ``count`` tiles in ``mode``, each inside the stage (a
    resize is laid out again on the next animation frame)."""

    def check() -> bool:
        layout = p.page.evaluate(BOXES)
        tiles = layout["tiles"]
        return (
            layout["mode"] == mode
            and len(tiles) == count
            and all(inside(t["box"], layout["stage"]) and t["box"]["w"] > 0 for t in tiles)
        )

    assert poll(check, 15), p.page.evaluate(BOXES)
    return dict(p.page.evaluate(BOXES))


def one_to_one(p: Participant) -> dict[str, Any]:
    """The page's stage once it shows a 1:1: the other person's tile and our own."""
    layout = settled(p, "one-to-one", 2)
    other = next(t for t in layout["tiles"] if not t["local"])
    me = next(t for t in layout["tiles"] if t["local"])
    layout["other"], layout["me"] = other, me
    assert other["place"] == "stage" and me["place"] == "pip", layout
    assert inside(other["box"], layout["stage"]) and inside(me["box"], layout["stage"]), layout
    # ourselves: a small corner of the stage
    assert area(me["box"]) <= 0.1 * area(layout["stage"]), layout
    # the controls are on the screen, not scrolled away
    assert inside(layout["leave"], {"x": 0, "y": 0, **layout["viewport"]}), layout
    return layout


def one_to_one_when(p: Participant, laid_out: Any, timeout: float = 10) -> dict[str, Any]:
    """``one_to_one`` once ``laid_out(layout)`` holds: after a resize the page lays the stage
    out again on its next animation frame, so the first look may still show the old sizes."""
    layout = one_to_one(p)
    deadline = time.monotonic() + timeout
    while not laid_out(layout) and time.monotonic() < deadline:
        time.sleep(0.2)
        layout = one_to_one(p)
    return layout


def test_a_one_to_one_fills_the_stage_at_every_window_size(people: Any, api_client: Api) -> None:
    s, mentor_acc, (learner_acc,) = class_with_learners(api_client, 1)
    sid = int(s["id"])
    mentor = people("mentor", mentor_acc, 1280, 800)
    mentor.enter(sid)
    mentor.wait_live()
    mentor.wait_sending(frames=30)
    learner = people("learner", learner_acc, 1280, 800)
    learner.enter(sid)
    learner.wait_live()
    everyone_decodes_everyone([mentor, learner])

    # 1280x800: the mentor takes the stage (it was two 430x240 tiles at the top of an empty one)
    layout = one_to_one(learner)
    stage, other = layout["stage"], layout["other"]
    assert other["box"]["w"] >= 0.9 * stage["w"] or other["box"]["h"] >= 0.9 * stage["h"], layout
    assert area(other["video"]) >= 0.7 * area(stage), layout
    print("1:1 at 1280x800: stage", stage, "mentor", other["box"], "self", layout["me"]["box"])

    # the stage tile is ~590 rows: the learner gets the mentor's 720-row layer (the time is
    # test_room_simulcast's for the same: the top layer starts once the mentor's estimate allows)
    assert poll(lambda: gets_top_layer(learner, mentor), 40), top_layer_details(learner, mentor)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    learner.page.screenshot(path=str(ARTIFACTS / "stage-one-to-one-1280x800.png"))

    # a phone held upright: the mentor spans the width, we sit below, the controls in reach
    learner.page.set_viewport_size({"width": 390, "height": 844})
    layout = one_to_one_when(learner, lambda lay: lay["other"]["box"]["w"] >= 0.95 * lay["stage"]["w"])
    assert layout["other"]["box"]["w"] >= 0.95 * layout["stage"]["w"], layout
    learner.page.screenshot(path=str(ARTIFACTS / "stage-one-to-one-390x844.png"))

    # turned sideways: the mentor spans the height
    learner.page.set_viewport_size({"width": 844, "height": 390})
    layout = one_to_one_when(learner, lambda lay: lay["other"]["box"]["h"] >= 0.95 * lay["stage"]["h"])
    assert layout["other"]["box"]["h"] >= 0.95 * layout["stage"]["h"], layout
    assert layout["stage"]["h"] >= 150, layout  # the title bar and controls leave room for video
    learner.page.screenshot(path=str(ARTIFACTS / "stage-one-to-one-844x390.png"))

    # and back to the desktop: laid out again for the larger window
    learner.page.set_viewport_size({"width": 1280, "height": 800})
    layout = one_to_one_when(learner, lambda lay: area(lay["other"]["video"]) >= 0.7 * area(lay["stage"]))
    assert area(layout["other"]["video"]) >= 0.7 * area(layout["stage"]), layout


def gallery(p: Participant, count: int) -> dict[str, Any]:
    """The page's stage once it shows ``count`` tiles in a gallery, all of the same size."""

    layout = settled(p, "gallery", count)
    tiles = layout["tiles"]
    w, h = tiles[0]["box"]["w"], tiles[0]["box"]["h"]
    assert all(abs(t["box"]["w"] - w) <= 1 and abs(t["box"]["h"] - h) <= 1 for t in tiles), layout
    assert all(inside(t["box"], layout["stage"]) for t in tiles), layout
    # no two tiles overlap
    for i, a in enumerate(tiles):
        for b in tiles[i + 1 :]:
            ax, ay, bx, by = a["box"]["x"], a["box"]["y"], b["box"]["x"], b["box"]["y"]
            assert ax + w <= bx + 1 or bx + w <= ax + 1 or ay + h <= by + 1 or by + h <= ay + 1, layout
    assert inside(layout["leave"], {"x": 0, "y": 0, **layout["viewport"]}), layout
    return layout


def columns(layout: dict[str, Any]) -> int:
    return len({round(t["box"]["x"]) for t in layout["tiles"]})


def test_a_gallery_fills_the_stage_and_nobody_encodes_720p_for_small_tiles(people: Any, api_client: Api) -> None:
    s, mentor_acc, learner_accs = class_with_learners(api_client, 3)
    sid = int(s["id"])
    mentor = people("mentor", mentor_acc, 1280, 800)
    mentor.enter(sid)
    mentor.wait_live()
    mentor.wait_sending(frames=30)
    learners = []
    for i, acc in enumerate(learner_accs):
        learner = people(f"learner {i + 1}", acc, 1280, 800)
        learner.enter(sid)
        learner.wait_live()
        learners.append(learner)
    everyone_decodes_everyone([mentor, *learners], timeout=30)

    # 1 + 3 at 1280x800: four equal tiles, two by two, most of the stage
    layout = gallery(learners[0], 4)
    assert columns(layout) == 2, layout
    covered = sum(area(t["box"]) for t in layout["tiles"])
    assert covered >= 0.6 * area(layout["stage"]), layout
    print("gallery 1+3 at 1280x800: stage", layout["stage"], "tile", layout["tiles"][0]["box"], "covered", covered)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    learners[0].page.screenshot(path=str(ARTIFACTS / "stage-gallery-1280x800.png"))

    # dynacast: each learner shows the mentor ~320 rows tall, which the 360-row layer covers;
    # nobody needs 720 rows, so the mentor's browser stops sending them (q and h go on)
    def sent() -> dict[str, int]:
        return {k: int(v) for k, v in mentor.page.evaluate(BYTES_SENT).items()}

    def f_flat() -> bool:
        before = sent()
        mentor.page.wait_for_timeout(2000)
        after = sent()
        grew = {rid: after.get(rid, 0) - before.get(rid, 0) for rid in ("q", "h", "f")}
        print("kbit/s per layer over 2 s:", {rid: n * 8 / 2000 for rid, n in grew.items()})
        return grew["f"] == 0 and grew["q"] > 0 and grew["h"] > 0

    assert poll(f_flat, 25, every=0), sent()

    # one learner goes full screen on the mentor (a double-click): the 720p layer comes back
    # and that learner decodes it within seconds, while the others keep theirs
    peer = mentor.peer_id
    watcher = learners[1]
    tile = watcher.page.locator(f'[data-tile="{peer}:camera"]')
    paused = sent()
    clicked = time.monotonic()
    tile.dblclick()
    assert poll(lambda: watcher.page.evaluate("() => Boolean(document.fullscreenElement)"), 5)
    assert poll(lambda: sent().get("f", 0) > paused.get("f", 0), 5, every=0.05), sent()
    resumed = time.monotonic() - clicked
    assert poll(lambda: gets_top_layer(watcher, mentor), 10, every=0.05), top_layer_details(watcher, mentor)
    hd = time.monotonic() - clicked
    print("top layer:", top_layer_details(watcher, mentor))
    mentor.page.wait_for_timeout(2000)
    rates = {rid: (n - paused.get(rid, 0)) * 8 / 1000 / (time.monotonic() - clicked) for rid, n in sent().items()}
    print(f"full screen: f bytes again after {resumed:.2f} s, top layer decoded after {hd:.2f} s; kbit/s since", rates)
    for other in (learners[0], learners[2]):
        assert 0 < int(other.page.evaluate(HEIGHT_FROM, peer)) < 720
    # what the full-screen page told the SFU: the video drawn on the whole 1280x800 screen
    # (720 rows, letterboxed), not the 287-row tile it had
    track = watcher.page.evaluate(TRACK_OF, [peer, "camera"])
    assert watcher.page.evaluate(f"() => window.__room.sizes[{track!r}]") >= 700, watcher.page.evaluate(SIZES)

    # speaker view gives the featured person the stage: their top layer comes back for it
    speaker_view = learners[2]
    speaker_view.page.locator('button[data-layout="speaker"]').click()
    settled(speaker_view, "speaker", 4)

    everyone = {p.peer_id: p for p in (mentor, *learners)}

    def featured() -> Participant:
        layout = speaker_view.page.evaluate(BOXES)
        star = next(t for t in layout["tiles"] if t["place"] == "stage")
        return everyone[star["key"].split(":")[0]]

    def stage_calls_for_the_top_layer() -> bool:
        # the page reports the featured video's drawn height (~450 rows: the 720-row layer) and
        # the featured person's browser has its top layer switched on again (dynacast); whether
        # that browser has the CPU to encode it is its own affair (on this shared machine under
        # load Chrome sometimes encodes no f at all: qualityLimitationReason "cpu")
        person = featured()
        track = speaker_view.page.evaluate(TRACK_OF, [person.peer_id, "camera"])
        reported = speaker_view.page.evaluate(SIZES).get(track, 0)
        return bool(reported >= 400 and person.page.evaluate(ACTIVE)[-1])

    assert poll(stage_calls_for_the_top_layer, 15), (
        speaker_view.page.evaluate(SIZES),
        top_layer_details(speaker_view, featured()),
    )
    layout = speaker_view.page.evaluate(BOXES)
    star = next(t for t in layout["tiles"] if t["place"] == "stage")
    assert area(star["box"]) >= 0.5 * area(layout["stage"]), layout
    assert all(area(t["box"]) < 0.1 * area(layout["stage"]) for t in layout["tiles"] if t is not star), layout

    # a window resized to a phone's: the gallery is laid out again, still equal tiles
    learners[0].page.set_viewport_size({"width": 390, "height": 844})
    layout = gallery(learners[0], 4)
    covered = sum(area(t["box"]) for t in layout["tiles"])
    assert covered >= 0.5 * area(layout["stage"]), layout
    learners[0].page.set_viewport_size({"width": 844, "height": 390})
    layout = gallery(learners[0], 4)
    assert columns(layout) >= 2, layout
