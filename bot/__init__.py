"""Telegram bot of image-styling: an aiogram 3 client of the MSG-Net TorchServe API."""
