"""aiogram routers, one per feature: each module's handlers are top-level functions, and its
``create_router()`` registers them on a fresh Router (a Router joins one Dispatcher only, and
the tests build a dispatcher per test)."""
