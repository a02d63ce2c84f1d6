// "Notify me in this browser" on the portal's notification page (docs/notifications.md).
// Registers the service worker (sw.js, served from /members/), subscribes the browser's push service with
// the co-op's VAPID key, and hands the subscription to the server with the page's session and CSRF token.
// Without JavaScript or Web Push the page still saves every other setting through its form.
(function () {
  "use strict";
  var section = document.getElementById("push-browser");
  if (!section) return;

  function csrfToken() {
    var field = document.querySelector("input[name=csrfmiddlewaretoken]");
    return field ? field.value : "";
  }

  function show(state) {
    section.querySelectorAll("[data-push-state]").forEach(function (node) {
      node.hidden = node.getAttribute("data-push-state") !== state;
    });
    section.querySelector("[data-push-action=on]").hidden = state !== "off";
    section.querySelector("[data-push-action=off]").hidden = state !== "on";
  }

  function say(text) {
    section.querySelector("[data-push-message]").textContent = text;
  }

  function keyBytes(base64url) {
    var padded = (base64url + "===".slice((base64url.length + 3) % 4)).replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(padded);
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) bytes[i] = raw.charCodeAt(i);
    return bytes;
  }

  function send(method, body) {
    return fetch(section.dataset.subscriptionUrl, {
      method: method,
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify(body),
    }).then(function (answer) {
      if (!answer.ok) {
        return answer.json().then(function (error) {
          throw new Error((error.error && error.error.message) || String(answer.status));
        });
      }
      return answer;
    });
  }

  if (!("serviceWorker" in navigator) || !("PushManager" in window) || !("Notification" in window)) {
    show("unsupported");
    return;
  }

  var ready = navigator.serviceWorker.register(section.dataset.workerUrl, { scope: "/members/" }).then(function () {
    return navigator.serviceWorker.ready;
  });

  ready
    .then(function (registration) {
      return registration.pushManager.getSubscription();
    })
    .then(function (subscription) {
      if (Notification.permission === "denied") show("denied");
      else show(subscription ? "on" : "off");
    })
    .catch(function () {
      show("unsupported");
    });

  section.querySelector("[data-push-action=on]").addEventListener("click", function () {
    say("");
    Notification.requestPermission()
      .then(function (permission) {
        if (permission !== "granted") {
          show(permission === "denied" ? "denied" : "off");
          throw null;
        }
        return Promise.all([ready, fetch(section.dataset.keyUrl, { credentials: "same-origin" }).then(function (r) { return r.json(); })]);
      })
      .then(function (both) {
        return both[0].pushManager.subscribe({ userVisibleOnly: true, applicationServerKey: keyBytes(both[1].public_key) });
      })
      .then(function (subscription) {
        return send("POST", subscription.toJSON());
      })
      .then(function () {
        show("on");
      })
      .catch(function (error) {
        if (error) say(error.message || String(error));
      });
  });

  section.querySelector("[data-push-action=off]").addEventListener("click", function () {
    say("");
    ready
      .then(function (registration) {
        return registration.pushManager.getSubscription();
      })
      .then(function (subscription) {
        if (!subscription) return null;
        var endpoint = subscription.endpoint;
        return subscription.unsubscribe().then(function () {
          return send("DELETE", { endpoint: endpoint });
        });
      })
      .then(function () {
        show("off");
      })
      .catch(function (error) {
        say(error.message || String(error));
      });
  });
})();
