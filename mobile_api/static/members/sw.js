// The portal's service worker (served at /members/sw.js): shows the co-op's Web Push messages and opens
// the page a message points at. The payload is what the server encrypted to this browser:
// {"title", "body", "event", "notification_id", "url"} (docs/notifications.md).
"use strict";

self.addEventListener("push", function (event) {
  var message = {};
  try {
    message = event.data ? event.data.json() : {};
  } catch (error) {
    message = { body: event.data ? event.data.text() : "" };
  }
  event.waitUntil(
    self.registration.showNotification(message.title || "Rochdale", {
      body: message.body || "",
      tag: message.notification_id || undefined,
      data: { url: message.url || "/members/" },
    })
  );
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var url = (event.notification.data && event.notification.data.url) || "/members/";
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (windows) {
      for (var i = 0; i < windows.length; i++) {
        if (windows[i].url === url && "focus" in windows[i]) return windows[i].focus();
      }
      return self.clients.openWindow(url);
    })
  );
});
