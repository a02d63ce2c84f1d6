// Rochdale live dispatch map: streets and service areas drawn once (streets.json: the router's own streets
// when its tiles are built, else the demo city's; areas.json), then drivers and open trips from the /ws/map/
// snapshots (about one a second), with drivers glided between snapshots and each trip drawn along its
// planned route. No tiles, no libraries.
"use strict";

(function () {
  const canvas = document.getElementById("map");
  const context = canvas.getContext("2d");
  const statusLabel = document.getElementById("status");
  const colours = {
    free: "#1f9d55", offered: "#e3a008", on_trip: "#2563eb", waiting: "#c2410c",
    street: "#d9d3c4", avenue: "#c5bca8", broad_street: "#cbbfa5", diagonal: "#b9a37c",
    service: "#e2dccd", minor: "#d3ccbb", secondary: "#c2b79f", major: "#b09a70",
    area: "#e6efe0", areaEdge: "#7fa36b",
  };
  // Line widths by drawing class: the demo city's classes, then OpenStreetMap's (dispatch/livemap/layers.py).
  const widths = {
    street: 0.7, broad_street: 1.6, avenue: 1.6, diagonal: 2.2,
    service: 0.5, minor: 0.9, secondary: 1.5, major: 2.2,
  };
  const drawOrder = ["service", "street", "minor", "broad_street", "avenue", "secondary", "diagonal", "major"];
  const AREAS_REFRESH_MS = 60000;
  const state = {
    layer: null, areas: [], streetCanvas: null, view: null, snapshot: null, snapshots: 0,
    drivers: new Map(), // id -> {from: [lat, lng], to: [lat, lng], since: ms, state}
    routes: new Map(), // route_key -> [[lat, lng], ...]: each route arrives once, then by its key alone
    drawn: { streets: 0, areas: 0, routes: 0, straight: 0 },
    alerts: new Map(), // SOS alerts not yet resolved (docs/safety.md), id -> the alert as staff see it
  };
  const sosBanner = document.getElementById("sos");
  const sosList = document.getElementById("sos-alerts");
  const GLIDE_MS = 950;

  // Expose what is drawn for tests and the curious: positions by driver id, and the snapshot count.
  window.rochdaleMap = state;

  function fitView() {
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth;
    const height = canvas.clientHeight;
    canvas.width = Math.round(width * ratio);
    canvas.height = Math.round(height * ratio);
    if (!state.layer) return;
    const b = state.layer.bounds;
    const midLat = (b.south + b.north) / 2;
    const kx = Math.cos((midLat * Math.PI) / 180); // metres per degree of longitude shrink with latitude
    const spanX = (b.east - b.west) * kx;
    const spanY = b.north - b.south;
    const margin = 16;
    const scale = Math.min((width - 2 * margin) / spanX, (height - 2 * margin) / spanY);
    const offsetX = (width - spanX * scale) / 2;
    const offsetY = (height - spanY * scale) / 2;
    state.view = {
      ratio, width, height,
      x: (lng) => offsetX + (lng - b.west) * kx * scale,
      y: (lat) => offsetY + (b.north - lat) * scale,
      metres: scale / 111320, // pixels per metre
    };
    drawStreets();
  }

  // Adds a polyline of [lat, lng] points to the path being built on `g`.
  function trace(g, view, points) {
    points.forEach(([lat, lng], i) => (i ? g.lineTo(view.x(lng), view.y(lat)) : g.moveTo(view.x(lng), view.y(lat))));
  }

  function drawStreets() {
    const view = state.view;
    const layer = document.createElement("canvas");
    layer.width = canvas.width;
    layer.height = canvas.height;
    const g = layer.getContext("2d");
    g.setTransform(view.ratio, 0, 0, view.ratio, 0, 0);
    // Service areas under the streets; holes (even-odd) stay unfilled.
    let areas = 0;
    for (const area of state.areas) {
      for (const rings of area.polygons) {
        g.beginPath();
        for (const ring of rings) {
          trace(g, view, ring);
          g.closePath();
        }
        g.fillStyle = colours.area;
        g.fill("evenodd");
        g.strokeStyle = colours.areaEdge;
        g.lineWidth = 1.2;
        g.setLineDash([6, 4]);
        g.stroke();
        g.setLineDash([]);
        areas += 1;
      }
    }
    const known = new Set(drawOrder);
    let streets = 0;
    for (const kind of drawOrder) {
      g.strokeStyle = colours[kind];
      g.lineWidth = Math.max(0.5, widths[kind] * Math.min(1.6, view.metres * 40));
      g.lineJoin = "round";
      g.beginPath();
      for (const road of state.layer.streets) {
        if (road.class !== kind && !(kind === "minor" && !known.has(road.class))) continue;
        trace(g, view, road.points);
        streets += 1;
      }
      g.stroke();
    }
    state.drawn.streets = streets;
    state.drawn.areas = areas;
    canvas.dataset.streets = String(streets);
    canvas.dataset.areas = String(areas);
    state.streetCanvas = layer;
  }

  function positionOf(driver, now) {
    const t = Math.min(1, (now - driver.since) / GLIDE_MS);
    return [driver.from[0] + (driver.to[0] - driver.from[0]) * t, driver.from[1] + (driver.to[1] - driver.from[1]) * t];
  }

  function draw(now) {
    requestAnimationFrame(draw);
    const view = state.view;
    if (!view || !state.streetCanvas) return;
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.drawImage(state.streetCanvas, 0, 0);
    context.setTransform(view.ratio, 0, 0, view.ratio, 0, 0);
    const snapshot = state.snapshot;
    if (snapshot) {
      let routes = 0;
      let straight = 0;
      for (const trip of snapshot.trips) {
        const waiting = trip.status === "requested";
        context.strokeStyle = waiting ? colours.waiting : colours.on_trip;
        context.globalAlpha = waiting ? 0.9 : 0.7;
        context.lineWidth = waiting ? 1.8 : 2.4;
        context.lineJoin = "round";
        context.setLineDash(waiting ? [4, 4] : []);
        context.beginPath();
        const route = trip.route_key ? state.routes.get(trip.route_key) : null;
        if (route && route.length >= 2) {
          // Along the streets the router planned; a trip from before routes were stored has none.
          trace(context, view, route);
          routes += 1;
        } else {
          context.moveTo(view.x(trip.pickup[1]), view.y(trip.pickup[0]));
          context.lineTo(view.x(trip.dropoff[1]), view.y(trip.dropoff[0]));
          straight += 1;
        }
        context.stroke();
        context.setLineDash([]);
        context.fillStyle = waiting ? colours.waiting : colours.on_trip;
        context.beginPath();
        context.arc(view.x(trip.pickup[1]), view.y(trip.pickup[0]), 3, 0, 2 * Math.PI);
        context.fill();
        context.lineWidth = 1.5;
        context.strokeRect(view.x(trip.dropoff[1]) - 2.5, view.y(trip.dropoff[0]) - 2.5, 5, 5);
      }
      context.globalAlpha = 1;
      state.drawn.routes = routes;
      state.drawn.straight = straight;
    }
    // SOS markers on top of everything: a red ring that pulses, so it is seen at a glance.
    const pulse = 9 + 4 * Math.sin(now / 180);
    for (const alert of state.alerts.values()) {
      if (!alert.position) continue;
      const x = view.x(alert.position.lng);
      const y = view.y(alert.position.lat);
      context.strokeStyle = "#dc2626";
      context.fillStyle = alert.status === "open" ? "#dc2626" : "#f97316";
      context.lineWidth = 3;
      context.beginPath();
      context.arc(x, y, pulse, 0, 2 * Math.PI);
      context.stroke();
      context.beginPath();
      context.arc(x, y, 4, 0, 2 * Math.PI);
      context.fill();
    }
    for (const driver of state.drivers.values()) {
      const [lat, lng] = positionOf(driver, now);
      const x = view.x(lng);
      const y = view.y(lat);
      context.fillStyle = colours[driver.state] || "#555";
      context.strokeStyle = "#fff";
      context.lineWidth = 1.5;
      context.beginPath();
      context.arc(x, y, driver.state === "free" ? 4.5 : 5.5, 0, 2 * Math.PI);
      context.fill();
      context.stroke();
      if (driver.wav) {
        context.strokeStyle = "#111";
        context.lineWidth = 1;
        context.beginPath();
        context.arc(x, y, 8, 0, 2 * Math.PI);
        context.stroke();
      }
    }
  }

  // The SOS banner: one line per alert not yet resolved, with who, where, and a button to take it on.
  function renderAlerts() {
    const labels = sosBanner.dataset;
    const alerts = [...state.alerts.values()].sort((a, b) => (a.raised_at < b.raised_at ? 1 : -1));
    // Snapshots repeat the same alerts every second: redraw the banner only when it changes, so a button
    // is never replaced under the pointer.
    const shown = JSON.stringify(alerts.map((a) => [a.id, a.status]));
    if (shown === canvas.dataset.alerts && sosList.childElementCount === alerts.length) return;
    sosList.replaceChildren();
    for (const alert of alerts) {
      const item = document.createElement("li");
      item.className = `sos-alert ${alert.status}`;
      item.dataset.alertId = alert.id;
      const who = alert.raised_by;
      const role = alert.role === "driver" ? labels.labelDriver : labels.labelRider;
      const raised = new Date(alert.raised_at).toLocaleTimeString();
      const where = alert.position
        ? `${alert.position.lat.toFixed(5)}, ${alert.position.lng.toFixed(5)}`
        : labels.labelNoPosition;
      const parts = [`${labels.labelTitle} ${raised}`, `${who.name} (${role}) ${who.phone}`, where];
      if (alert.trip) {
        parts.push(`${labels.labelTrip} ${alert.trip.id.slice(0, 8)} · ${alert.trip.status}`);
        if (alert.trip.vehicle) {
          const v = alert.trip.vehicle;
          parts.push(`${labels.labelVehicle} ${v.make} ${v.model} ${v.plate}`);
        }
      }
      const text = document.createElement("span");
      text.textContent = parts.join(" — ");
      item.append(text);
      if (alert.acknowledged) {
        const by = document.createElement("em");
        by.textContent = ` ${labels.labelAcknowledged} ${alert.acknowledged.by.name}`;
        item.append(by);
      } else {
        const waiting = document.createElement("em");
        waiting.textContent = ` ${labels.labelOpen}`;
        item.append(waiting);
        // A plain form: CSRF-protected, works however the page was opened.
        const form = document.createElement("form");
        form.method = "post";
        form.action = labels.acknowledgeUrl.replace("00000000-0000-0000-0000-000000000000", alert.id);
        const csrf = document.createElement("input");
        csrf.type = "hidden";
        csrf.name = "csrfmiddlewaretoken";
        csrf.value = labels.csrf;
        const button = document.createElement("button");
        button.type = "submit";
        button.textContent = labels.labelAcknowledge;
        form.append(csrf, button);
        item.append(form);
      }
      sosList.append(item);
    }
    sosBanner.hidden = alerts.length === 0;
    canvas.dataset.alerts = shown;
  }

  function applyAlert(alert) {
    if (alert.status === "resolved") state.alerts.delete(alert.id);
    else state.alerts.set(alert.id, alert);
    renderAlerts();
  }

  function applySnapshot(snapshot) {
    const now = performance.now();
    const seen = new Set();
    for (const d of snapshot.drivers) {
      seen.add(d.id);
      const known = state.drivers.get(d.id);
      const from = known ? positionOf(known, now) : [d.lat, d.lng];
      state.drivers.set(d.id, { from, to: [d.lat, d.lng], since: now, state: d.state, wav: d.wav });
    }
    for (const id of [...state.drivers.keys()]) if (!seen.has(id)) state.drivers.delete(id);
    // Routes arrive once per connection and by key afterwards; keep those still in use, as the server does.
    const keys = new Set();
    for (const trip of snapshot.trips) {
      if (!trip.route_key) continue;
      keys.add(trip.route_key);
      if (trip.route) state.routes.set(trip.route_key, trip.route);
    }
    for (const key of [...state.routes.keys()]) if (!keys.has(key)) state.routes.delete(key);
    state.snapshot = snapshot;
    state.snapshots += 1;
    for (const [key, value] of Object.entries(snapshot.counts || {})) {
      const cell = document.getElementById(`count-${key}`);
      if (cell) cell.textContent = value;
    }
    canvas.dataset.snapshots = String(state.snapshots);
    canvas.dataset.drivers = JSON.stringify(snapshot.drivers.map((d) => [d.id, d.lat, d.lng, d.state]));
    canvas.dataset.routes = JSON.stringify(
      snapshot.trips.map((t) => [t.id, t.status, (state.routes.get(t.route_key) || []).length]),
    );
    if (snapshot.alerts) {
      state.alerts = new Map(snapshot.alerts.map((a) => [a.id, a]));
      renderAlerts();
    }
  }

  function connect(delay) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${canvas.dataset.socketPath}`);
    socket.onopen = () => {
      delay = 500;
      state.routes.clear(); // a new connection sends every route again
      // The page carries these words in its own language (the template translates them).
      statusLabel.textContent = statusLabel.dataset.labelLive || "live";
      statusLabel.className = "status live";
    };
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === "snapshot") applySnapshot(frame);
      else if (frame.type === "sos" || frame.type === "sos.updated") applyAlert(frame.alert);
    };
    socket.onclose = (event) => {
      statusLabel.textContent =
        event.code === 4401 || event.code === 4403
          ? statusLabel.dataset.labelSignedOut || "signed out"
          : statusLabel.dataset.labelReconnecting || "reconnecting…";
      statusLabel.className = "status down";
      if (event.code !== 4401 && event.code !== 4403) setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
    };
  }

  function getJson(url) {
    return fetch(url, { credentials: "same-origin" }).then((response) => {
      if (!response.ok) throw new Error(`${url}: ${response.status}`);
      return response.json();
    });
  }

  // Service areas change when staff edit them: revalidate now and then (a 304 when nothing changed).
  function refreshAreas() {
    getJson(canvas.dataset.areasUrl)
      .then((layer) => {
        const changed = JSON.stringify(layer.service_areas) !== JSON.stringify(state.areas);
        state.areas = layer.service_areas;
        if (changed && state.view) drawStreets();
      })
      .catch(() => {}) // the next refresh tries again; the map keeps what it drew
      .finally(() => setTimeout(refreshAreas, AREAS_REFRESH_MS));
  }

  const areasOrNone = getJson(canvas.dataset.areasUrl).catch(() => null);
  Promise.all([getJson(canvas.dataset.streetsUrl), areasOrNone]).then(
    ([layer, areas]) => {
      state.layer = layer;
      state.areas = areas ? areas.service_areas : [];
      const source = document.getElementById("streets-source");
      if (source) {
        source.textContent =
          layer.source === "tiles"
            ? (source.dataset.labelTiles || "streets: {city} (road tiles)").replace("{city}", layer.city)
            : source.dataset.labelDemo || "streets: demo city";
      }
      canvas.dataset.streetsSource = layer.source;
      fitView();
      requestAnimationFrame(draw);
      connect(500);
      setTimeout(refreshAreas, AREAS_REFRESH_MS);
    },
  );
  window.addEventListener("resize", () => state.layer && fitView());
})();
