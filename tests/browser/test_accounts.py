"""Account journeys in a real browser: the register wizard, login, guards, logout."""

from __future__ import annotations

import email
import io
import re
import time
import uuid
from pathlib import Path

import pytest
from playwright.sync_api import expect

from tests.browser.conftest import DEMO_LEARNER, DEMO_MENTOR, PASSWORD, LiveServer, Tab

pytestmark = pytest.mark.browser


def _png(path: Path) -> Path:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (79, 70, 229)).save(buf, format="PNG")
    path.write_bytes(buf.getvalue())
    return path


def _mailed_link(server: LiveServer, to: str, path: str, timeout: float = 10.0) -> str:
    """The link to ``path`` in the newest e-mail to ``to`` in the outbox (the server's
    background sender writes it moments after the request that queued it)."""
    outbox = server.settings.outbox_dir
    deadline = time.monotonic() + timeout
    while True:
        for eml in sorted(outbox.glob("*.eml"), key=lambda p: p.stat().st_mtime, reverse=True):
            msg = email.message_from_bytes(eml.read_bytes())
            if msg["To"] != to:
                continue
            body = (
                msg.get_payload(decode=True)
                if not msg.is_multipart()
                else next(p for p in msg.walk() if p.get_content_type() == "text/plain").get_payload(decode=True)
            )
            match = re.search(re.escape(path) + r"\?token=[\w\-]+", body.decode())
            if match:
                return match.group(0)
        if time.monotonic() > deadline:
            raise AssertionError(f"no e-mail with {path} to {to}")
        time.sleep(0.1)


def test_register_wizard_then_login_lands_on_learner_dashboard(
    tab: Tab, live_server: LiveServer, tmp_path: Path
) -> None:
    page = tab.page
    tab.goto("/")
    page.get_by_role("link", name="Get Started").first.click()
    expect(page).to_have_url(re.compile(r"/register$"))

    # Step 1: Role; [Next] only once a role is chosen.
    step1_next = page.locator('[data-step="1"] [data-next]')
    expect(step1_next).to_be_disabled()
    page.get_by_role("radio", name=re.compile(r"^Learner")).check()
    expect(step1_next).to_be_enabled()
    expect(page.locator("#step-counter")).to_have_text("Step 1 of 4")
    step1_next.click()

    # Step 2: Basic Info with the live strength meter; [Back] returns to step 1.
    expect(page.locator("#step-counter")).to_have_text("Step 2 of 4")
    addr = f"wizard-{uuid.uuid4().hex[:8]}@example.com"
    page.get_by_label("Full Name").fill("Wendy Wizard")
    page.get_by_label("Email").fill(addr)
    page.get_by_label("Password", exact=True).fill("abc")
    expect(page.get_by_test_id("strength")).to_contain_text("too short")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    expect(page.get_by_test_id("strength")).to_contain_text("strong")
    page.locator('[data-step="2"] [data-back]').click()
    expect(page.locator("#step-counter")).to_have_text("Step 1 of 4")
    step1_next.click()
    page.locator('[data-step="2"] [data-next]').click()

    # Step 3: interests and an image with an instant preview.
    expect(page.locator("#step-counter")).to_have_text("Step 3 of 4")
    expect(page.get_by_label("Domains")).to_have_count(0)  # mentor-only field stays hidden for learners
    page.get_by_label("Interests").fill("Python, SQL")
    preview = page.locator("#avatar-preview")
    expect(preview).to_be_hidden()
    page.set_input_files("#avatar", str(_png(tmp_path / "me.png")))
    expect(preview).to_be_visible()
    expect(preview).to_have_attribute("src", re.compile(r"^blob:"))
    page.locator('[data-step="3"] [data-next]').click()

    # Step 4: review, then [Finish] → /login with "check your e-mail".
    expect(page.locator("#step-counter")).to_have_text("Step 4 of 4")
    review = page.locator("#review")
    expect(review).to_contain_text("Wendy Wizard")
    expect(review).to_contain_text(addr)
    expect(review).to_contain_text("Python, SQL")
    page.get_by_role("button", name="Finish").click()
    expect(page).to_have_url(re.compile(r"/login\?registered=1"))
    expect(page.get_by_test_id("registered-notice")).to_contain_text("check your e-mail")

    # The mailed verification link confirms the address.
    tab.goto(_mailed_link(live_server, addr, "/verify-email").replace(live_server.url, ""))
    expect(page.get_by_text("Your e-mail address is confirmed")).to_be_visible()

    # Log in through the form: the learner dashboard, with the uploaded avatar in the top bar.
    tab.goto("/login")
    page.get_by_label("Email").fill(addr)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(re.compile(r"/learner/dashboard$"))
    expect(page.get_by_role("heading", name="Learner dashboard")).to_be_visible()
    expect(page.locator("[data-avatar-menu] summary img")).to_have_attribute("src", re.compile(r"^/media/avatars/"))
    tab.shot("register-dashboard")


def test_login_failure_shows_invalid_credentials(tab: Tab) -> None:
    page = tab.page
    tab.goto("/login")
    page.get_by_label("Email").fill(DEMO_LEARNER)
    page.get_by_label("Password").fill("wrong-password-1")
    page.get_by_role("button", name="Sign In").click()
    expect(page.get_by_role("alert")).to_have_text("Invalid credentials")
    expect(page).to_have_url(re.compile(r"/login$"))


def test_mentor_demo_login_lands_on_mentor_dashboard(tab: Tab) -> None:
    page = tab.page
    tab.goto("/login")
    page.get_by_label("Email").fill(DEMO_MENTOR)
    page.get_by_label("Password").fill("peerlearn123")
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(re.compile(r"/mentor/dashboard$"))
    expect(page.get_by_test_id("mentor-overview")).to_be_visible()


def test_guards_send_anonymous_to_login_and_back(tab: Tab) -> None:
    page = tab.page
    tab.goto("/learner/requests")
    expect(page).to_have_url(re.compile(r"/login\?next=/learner/requests$"))
    page.get_by_label("Email").fill(DEMO_LEARNER)
    page.get_by_label("Password").fill("peerlearn123")
    page.get_by_role("button", name="Sign In").click()
    expect(page).to_have_url(re.compile(r"/learner/requests$"))


def test_wrong_role_and_unknown_pages_are_friendly(tab: Tab) -> None:
    tab.login(DEMO_LEARNER)
    resp = tab.goto("/mentor/dashboard")
    assert resp.status == 403
    expect(tab.page.get_by_role("heading", name="You can't open this page")).to_be_visible()
    expect(tab.page.get_by_role("link", name="Go to your dashboard")).to_have_attribute("href", "/learner/dashboard")
    resp = tab.goto("/no/such/page")
    assert resp.status == 404
    expect(tab.page.get_by_role("heading", name="Page not found")).to_be_visible()


def test_a_file_that_is_not_an_image_is_refused_on_the_profile(tab: Tab, tmp_path: Path) -> None:
    """Named .png but not one: the profile says so at once and keeps the current picture; a real
    image still previews."""
    page = tab.page
    tab.login(DEMO_LEARNER)
    tab.goto("/profile")
    fake = tmp_path / "x.png"
    fake.write_bytes(b"this is not an image at all" * 20)
    page.set_input_files("#avatar", str(fake))
    error = page.locator('[data-error-for="file"]')
    expect(error).to_have_text(re.compile("not an image we can use"))
    expect(page.locator("#avatar-preview")).to_be_hidden()
    expect(page.locator("#profile-avatar-wrap")).to_be_visible()
    page.set_input_files("#avatar", str(_png(tmp_path / "me.png")))
    expect(page.locator("#avatar-preview")).to_be_visible()
    expect(error).to_be_hidden()
    assert tab.console_errors == []


def test_logout_from_the_avatar_menu(tab: Tab) -> None:
    page = tab.page
    tab.login(DEMO_LEARNER)
    tab.goto("/learner/home")
    page.locator("[data-avatar-menu] summary").click()
    page.get_by_role("menuitem", name="Logout").click()
    expect(page).to_have_url(tab.base + "/")
    expect(page.get_by_role("heading", name="Learn from Experts Live")).to_be_visible()
    tab.goto("/learner/home")
    expect(page).to_have_url(re.compile(r"/login\?next="))
