"""User routes: me, profile update, avatar upload, admin deactivation."""

from __future__ import annotations

from aiohttp import web

from api.auth import CurrentUser
from api.errors import ApiError
from api.keys import DB, HUB, LIMITER, SETTINGS
from api.routing import ApiRoutes, path_id
from api.schemas.accounts import UserMe, UserPublic, UserUpdate
from api.context import Context
from api.services import accounts, deactivation
from api.upload_reader import read_file_field

routes = ApiRoutes("users")


@routes.get("/api/users/me", response=UserMe)
async def me(request: web.Request, *, user: CurrentUser) -> UserMe:
    """The signed-in user's own profile."""
    return accounts.to_me(await accounts.get_user(request.app[DB], user.id))


@routes.get("/api/users/{id}", response=UserPublic)
async def public_profile(request: web.Request, *, user: CurrentUser) -> UserPublic:
    """Another user's public profile (no e-mail, no settings)."""
    target = await accounts.get_user(request.app[DB], path_id(request))
    if not target.is_active and not user.is_admin:
        raise ApiError(404, "not_found", "User not found.")
    return accounts.to_public(target)


@routes.post("/api/users/{id}/update", body=UserUpdate, response=UserMe)
async def update(request: web.Request, *, body: UserUpdate, user: CurrentUser) -> UserMe:
    """Edit your own profile; role, e-mail and status cannot be set here."""
    updated = await accounts.update_profile(request.app[DB], user.id, user.role, path_id(request), body)
    return accounts.to_me(updated)


@routes.post("/api/users/{id}/avatar", response=UserMe, raw_body="multipart/form-data", errors=(415, 429))
async def avatar(request: web.Request, *, user: CurrentUser) -> UserMe:
    """Upload a profile picture (PNG/JPEG/WebP/GIF, re-encoded to PNG)."""
    settings = request.app[SETTINGS]
    target_id = path_id(request)
    if user.id != target_id and not user.is_admin:
        raise ApiError(403, "forbidden", "You may only change your own picture.")
    # Each upload decodes an image: a few per hour is plenty for a person, not for a flood.
    verdict = await request.app[LIMITER].hit(f"avatar:user:{user.id}", settings.avatar_rate_limit, 3600)
    if not verdict.allowed:
        raise ApiError(
            429,
            "rate_limited",
            "Too many picture uploads; try again later.",
            headers={"Retry-After": str(verdict.retry_after)},
        )

    def within_limit(size: int) -> None:
        if size > settings.max_avatar_bytes:
            raise ApiError(413, "payload_too_large", "The image is too large (max 4 MB).")

    upload = await read_file_field(request, "the image", within_limit, 65536)
    updated = await accounts.set_avatar(
        request.app[DB], settings.uploads_dir, user.id, user.role, target_id, upload.data, upload.content_type
    )
    return accounts.to_me(updated)


@routes.post("/api/users/{id}/deactivate", response=UserMe, auth="admin")
async def deactivate(request: web.Request, *, user: CurrentUser) -> UserMe:
    """Admin: deactivate an account; its tokens and sockets stop working. A mentor's future
    sessions are cancelled with full refunds and their open proposals withdrawn."""
    target = await deactivation.deactivate(Context.of(request.app), user.id, path_id(request))
    hub = request.app.get(HUB)
    if hub is not None:
        await hub.close_user(target.id)
    return accounts.to_me(target)


@routes.post("/api/users/{id}/reactivate", response=UserMe, auth="admin")
async def reactivate(request: web.Request, *, user: CurrentUser) -> UserMe:
    """Admin: reactivate a deactivated account."""
    return accounts.to_me(await accounts.set_active(request.app[DB], user.id, path_id(request), True))
