// Live updates for the Varde board. The server says on /events when its
// store changed; this page then fetches its own fragment again (the URL is
// in #live's data-fragment) and swaps it in. All markup comes from the
// server, which escapes every value; nothing here builds HTML from data.
"use strict";
(function () {
  const live = document.getElementById("live");
  const conn = document.getElementById("conn");
  if (!live || !window.EventSource) return;
  const url = live.dataset.fragment;
  let busy = false;
  let again = null;

  async function refresh(version) {
    if (busy) {
      again = version;
      return;
    }
    busy = true;
    try {
      const r = await fetch(url, { cache: "no-store", credentials: "same-origin" });
      if (r.ok) {
        live.innerHTML = await r.text();
        document.body.dataset.version = version;
      }
    } catch (e) {
      // The next event tries again.
    } finally {
      busy = false;
      if (again !== null) {
        const v = again;
        again = null;
        refresh(v);
      }
    }
  }

  const events = new EventSource("/events");
  events.addEventListener("changed", function (e) {
    refresh(e.data);
  });
  events.onopen = function () {
    conn.textContent = "live";
    conn.classList.add("on");
  };
  events.onerror = function () {
    conn.textContent = "reconnecting";
    conn.classList.remove("on");
  };
})();
