"""One module per resource, each with one route table; ``ROUTES`` lists them in the order
they are registered. Route modules only declare routes: the objects they use are built in
api/lifecycle.py and reached through the typed keys of api/keys.py."""

from api.routes import (
    admin,
    analytics,
    auth,
    availability,
    bookings,
    calendar,
    earnings,
    feedback,
    materials,
    messages,
    notifications,
    readiness,
    realtime,
    recommendations,
    recordings,
    reports,
    requests,
    reschedule,
    rooms,
    sessions,
    system,
    users,
)
from api.routing import ApiRoutes

ROUTES: tuple[ApiRoutes, ...] = (
    system.routes,
    auth.routes,
    users.routes,
    realtime.routes,
    notifications.routes,
    messages.routes,
    requests.routes,
    readiness.routes,
    admin.routes,
    analytics.routes,
    sessions.routes,
    availability.routes,
    reschedule.routes,
    bookings.routes,
    calendar.routes,
    reports.routes,
    earnings.routes,
    feedback.routes,
    recommendations.routes,
    rooms.routes,
    recordings.routes,
    materials.routes,
)
