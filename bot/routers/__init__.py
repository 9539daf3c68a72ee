"""aiogram routers, one per feature; each module has ``create_router()``."""
