// Rochdale share-trip page (docs/safety.md): polls the link's JSON and keeps the text, the progress steps
// and a small sketch (pickup area, dropoff area, the car) current. No map tiles, no libraries, nothing
// fetched from anywhere but this server. The page says everything in text; the sketch only adds a picture.
"use strict";

(function () {
  const root = document.getElementById("shared-trip");
  if (!root) return;
  const labels = root.dataset;
  const POLL_MS = Number(labels.pollMs) || 10000; // ROCHDALE_SHARE_PAGE_POLL_S
  const STEPS = ["requested", "assigned", "arrived", "in_progress"];
  const byId = (id) => document.getElementById(id);
  const fill = (template, values) =>
    Object.entries(values).reduce((text, [key, value]) => text.replace(`%(${key})s`, value), template);
  const clock = (iso) => new Date(iso).toLocaleTimeString();

  function showSteps(status) {
    const reached = STEPS.indexOf(status);
    for (const item of root.querySelectorAll("[data-step]")) {
      const index = STEPS.indexOf(item.dataset.step);
      item.className = index < reached ? "done" : index === reached ? "current" : "";
      if (index === reached) item.setAttribute("aria-current", "step");
      else item.removeAttribute("aria-current");
    }
  }

  // The sketch: the pickup and dropoff areas and the car, fitted into the box (north up).
  function sketch(pickup, dropoff, car) {
    const points = [pickup, dropoff, ...(car ? [car] : [])];
    const lats = points.map((p) => p[0]);
    const lngs = points.map((p) => p[1]);
    const kx = Math.cos((((Math.min(...lats) + Math.max(...lats)) / 2) * Math.PI) / 180);
    const spanX = Math.max((Math.max(...lngs) - Math.min(...lngs)) * kx, 1e-4);
    const spanY = Math.max(Math.max(...lats) - Math.min(...lats), 1e-4);
    const scale = Math.min(240 / spanX, 120 / spanY);
    const x = (p) => 160 + ((p[1] - (Math.min(...lngs) + Math.max(...lngs)) / 2) * kx) * scale;
    const y = (p) => 100 - (p[0] - (Math.min(...lats) + Math.max(...lats)) / 2) * scale;
    const route = byId("sketch-route");
    route.setAttribute("x1", x(pickup));
    route.setAttribute("y1", y(pickup));
    route.setAttribute("x2", x(dropoff));
    route.setAttribute("y2", y(dropoff));
    byId("sketch-pickup").setAttribute("cx", x(pickup));
    byId("sketch-pickup").setAttribute("cy", y(pickup));
    byId("sketch-dropoff").setAttribute("x", x(dropoff) - 14);
    byId("sketch-dropoff").setAttribute("y", y(dropoff) - 14);
    const dot = byId("sketch-car");
    if (car) {
      dot.setAttribute("cx", x(car));
      dot.setAttribute("cy", y(car));
      dot.setAttribute("visibility", "visible");
    } else {
      dot.setAttribute("visibility", "hidden");
    }
  }

  const place = (text) => (text ? text.split(",").map(Number) : null);

  function show(trip) {
    root.dataset.status = trip.status;
    // data-label-in_progress is dataset.labelIn_progress: the first letter up, the rest as written.
    byId("status").textContent = labels[`label${trip.status[0].toUpperCase()}${trip.status.slice(1)}`] || "";
    showSteps(trip.status);
    const driver = byId("driver");
    driver.hidden = !trip.driver;
    if (trip.driver) {
      byId("driver-name").textContent = trip.driver.first_name;
      const v = trip.driver.vehicle;
      const vehicle = byId("vehicle");
      vehicle.replaceChildren();
      if (v) {
        const plate = document.createElement("strong");
        plate.textContent = v.plate;
        vehicle.append(`${v.make} ${v.model} · `, plate);
      }
    }
    const eta = trip.eta;
    byId("eta").textContent = eta
      ? fill(eta.to === "pickup" ? labels.labelEtaPickup : labels.labelEtaDropoff, {
          minutes: Math.max(Math.ceil(eta.seconds / 60), 1),
        })
      : "";
    byId("car-seen").textContent = trip.car ? fill(labels.labelCarSeen, { time: clock(trip.car.at) }) : "";
    byId("updated").textContent = fill(labels.labelUpdated, { time: clock(trip.updated_at) });
    const pickup = [trip.pickup_area.lat, trip.pickup_area.lng];
    const dropoff = [trip.dropoff_area.lat, trip.dropoff_area.lng];
    sketch(pickup, dropoff, trip.car ? [trip.car.lat, trip.car.lng] : null);
  }

  function ended() {
    byId("status").textContent = labels.labelEnded;
    root.dataset.status = "ended";
    for (const id of ["driver", "eta", "car-seen"]) byId(id).hidden = true;
    byId("sketch").setAttribute("visibility", "hidden");
  }

  function poll() {
    fetch(labels.apiUrl, { credentials: "omit", cache: "no-store" })
      .then((response) => {
        if (response.status === 404) {
          ended();
          return; // the link will not come back: stop polling
        }
        if (!response.ok) throw new Error(String(response.status));
        return response.json().then((trip) => {
          show(trip);
          setTimeout(poll, POLL_MS);
        });
      })
      .catch(() => {
        byId("updated").textContent = labels.labelOffline;
        setTimeout(poll, POLL_MS * 2);
      });
  }

  showSteps(root.dataset.status);
  const svg = byId("sketch");
  sketch(place(svg.dataset.pickup), place(svg.dataset.dropoff), place(svg.dataset.car));
  setTimeout(poll, POLL_MS);
})();
