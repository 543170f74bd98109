"""The live server: aiohttp app with the web client, WebRTC offer/WHIP and the WebSocket API."""
