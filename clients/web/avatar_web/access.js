// What this page needs from the server before it connects: its token and the ICE servers.
//
// The token comes in the page's URL, as `avatar serve` prints it: https://host:port/#token=... (the
// fragment never leaves the browser, so it is not in any server's log), or ?token=... . It is kept for
// this tab (sessionStorage) and taken out of the address bar, then sent as "Authorization: Bearer" on
// every request that opens or ends a session. ICE servers (STUN/TURN, with TURN's credentials) come from
// GET /config, which needs the token too.
"use strict";

const STORAGE_KEY = "avatar-token";

function readToken() {
  const fromUrl =
    new URLSearchParams(location.hash.slice(1)).get("token") || new URLSearchParams(location.search).get("token");
  if (fromUrl) {
    sessionStorage.setItem(STORAGE_KEY, fromUrl);
    history.replaceState(null, "", location.pathname); // out of the address bar, the history and screenshots
    return fromUrl;
  }
  return sessionStorage.getItem(STORAGE_KEY);
}

const token = readToken();

// `headers` plus the token, if the page has one.
export function withToken(headers = {}) {
  return token ? { ...headers, Authorization: `Bearer ${token}` } : headers;
}

// The RTCPeerConnection configuration the server hands out (no ICE servers: host candidates only).
export async function peerConfiguration() {
  const response = await fetch("config", { headers: withToken() });
  if (response.status === 401 || response.status === 403) {
    const body = await response.json().catch(() => ({}));
    throw new Error(
      `${body.error || "the server refused this page"}: open the address the server printed, with its #token=...`
    );
  }
  if (!response.ok) throw new Error(`the server's configuration could not be read (HTTP ${response.status})`);
  const body = await response.json();
  return { iceServers: body.ice_servers || [] };
}
