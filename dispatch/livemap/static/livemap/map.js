// Rochdale live dispatch map: streets drawn once, then drivers and open trips from the /ws/map/ snapshots
// (about one a second), with drivers glided between snapshots. No tiles, no libraries.
"use strict";

(function () {
  const canvas = document.getElementById("map");
  const context = canvas.getContext("2d");
  const statusLabel = document.getElementById("status");
  const colours = {
    free: "#1f9d55", offered: "#e3a008", on_trip: "#2563eb", waiting: "#c2410c",
    street: "#d9d3c4", avenue: "#c5bca8", broad_street: "#cbbfa5", diagonal: "#b9a37c", area: "#ebe5d6",
  };
  const state = {
    layer: null, streetCanvas: null, view: null, snapshot: null, snapshots: 0,
    drivers: new Map(), // id -> {from: [lat, lng], to: [lat, lng], since: ms, state}
  };
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

  function drawStreets() {
    const view = state.view;
    const layer = document.createElement("canvas");
    layer.width = canvas.width;
    layer.height = canvas.height;
    const g = layer.getContext("2d");
    g.setTransform(view.ratio, 0, 0, view.ratio, 0, 0);
    for (const ring of state.layer.service_areas || []) {
      g.beginPath();
      ring.forEach(([lat, lng], i) => (i ? g.lineTo(view.x(lng), view.y(lat)) : g.moveTo(view.x(lng), view.y(lat))));
      g.closePath();
      g.fillStyle = colours.area;
      g.fill();
    }
    const widths = { street: 0.7, broad_street: 1.6, avenue: 1.6, diagonal: 2.2 };
    const order = ["street", "broad_street", "avenue", "diagonal"];
    for (const kind of order) {
      g.strokeStyle = colours[kind];
      g.lineWidth = Math.max(0.5, widths[kind] * Math.min(1.6, view.metres * 40));
      g.beginPath();
      for (const road of state.layer.streets) {
        if (road.class !== kind) continue;
        road.points.forEach(([lat, lng], i) =>
          i ? g.lineTo(view.x(lng), view.y(lat)) : g.moveTo(view.x(lng), view.y(lat)),
        );
      }
      g.stroke();
    }
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
      for (const trip of snapshot.trips) {
        const waiting = trip.status === "requested";
        context.strokeStyle = waiting ? colours.waiting : colours.on_trip;
        context.globalAlpha = waiting ? 0.9 : 0.55;
        context.lineWidth = 1.5;
        context.setLineDash(waiting ? [4, 4] : []);
        context.beginPath();
        context.moveTo(view.x(trip.pickup[1]), view.y(trip.pickup[0]));
        context.lineTo(view.x(trip.dropoff[1]), view.y(trip.dropoff[0]));
        context.stroke();
        context.setLineDash([]);
        context.fillStyle = waiting ? colours.waiting : colours.on_trip;
        context.beginPath();
        context.arc(view.x(trip.pickup[1]), view.y(trip.pickup[0]), 3, 0, 2 * Math.PI);
        context.fill();
        context.strokeRect(view.x(trip.dropoff[1]) - 2.5, view.y(trip.dropoff[0]) - 2.5, 5, 5);
      }
      context.globalAlpha = 1;
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
    state.snapshot = snapshot;
    state.snapshots += 1;
    for (const [key, value] of Object.entries(snapshot.counts || {})) {
      const cell = document.getElementById(`count-${key}`);
      if (cell) cell.textContent = value;
    }
    canvas.dataset.snapshots = String(state.snapshots);
    canvas.dataset.drivers = JSON.stringify(snapshot.drivers.map((d) => [d.id, d.lat, d.lng, d.state]));
  }

  function connect(delay) {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const socket = new WebSocket(`${scheme}://${location.host}${canvas.dataset.socketPath}`);
    socket.onopen = () => {
      delay = 500;
      statusLabel.textContent = "live";
      statusLabel.className = "status live";
    };
    socket.onmessage = (event) => {
      const frame = JSON.parse(event.data);
      if (frame.type === "snapshot") applySnapshot(frame);
    };
    socket.onclose = (event) => {
      statusLabel.textContent = event.code === 4401 || event.code === 4403 ? "signed out" : "reconnecting…";
      statusLabel.className = "status down";
      if (event.code !== 4401 && event.code !== 4403) setTimeout(() => connect(Math.min(delay * 2, 10000)), delay);
    };
  }

  fetch(canvas.dataset.streetsUrl, { credentials: "same-origin" })
    .then((response) => response.json())
    .then((layer) => {
      state.layer = layer;
      fitView();
      requestAnimationFrame(draw);
      connect(500);
    });
  window.addEventListener("resize", () => state.layer && fitView());
})();
