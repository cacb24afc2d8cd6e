// roomcast: served with the Admin UI; fills in this page's origin as the server URL.
try {
  if (!localStorage.getItem("server_url")) localStorage.setItem("server_url", location.origin);
} catch (e) {}
