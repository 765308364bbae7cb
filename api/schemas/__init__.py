"""Request and response models (pydantic), one module per area; the OpenAPI document is
generated from them (``api.routing.build_openapi``).

``common`` holds the building blocks (``Strict`` bodies, ``QueryModel`` query strings,
single-line names and tags); each other module is named for the routes it serves.
"""
