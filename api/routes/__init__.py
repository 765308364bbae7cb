"""One module per resource; ``ROUTE_MODULES`` is the route table's table of contents."""

ROUTE_MODULES = [
    "api.routes.system",
    "api.routes.auth",
    "api.routes.users",
    "api.routes.realtime",
    "api.routes.notifications",
    "api.routes.requests",
    "api.routes.readiness",
    "api.routes.scheduler",
    "api.routes.admin",
    "api.routes.analytics",
    "api.routes.sessions",
    "api.routes.bookings",
    "api.routes.reports",
    "api.routes.earnings",
    "api.routes.feedback",
    "api.routes.recommendations",
    "api.routes.rooms",
    "api.routes.recordings",
]
