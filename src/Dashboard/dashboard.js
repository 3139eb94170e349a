// Live updates of a run page: the server sends an "update" event when the ledger changes, and the page swaps in
// the run's new HTML fragment. No framework, no build step.
(function () {
  const run = document.getElementById('run');
  const status = document.getElementById('live');
  if (!run || !window.EventSource) return;
  const base = run.dataset.fragment;
  const events = new EventSource(run.dataset.events);
  let pending = null;
  events.addEventListener('update', () => {
    if (pending) return;
    pending = fetch(base, { credentials: 'same-origin' })
      .then(r => (r.ok ? r.text() : Promise.reject(new Error('HTTP ' + r.status))))
      .then(html => { run.innerHTML = html; status.textContent = 'live, updated ' + new Date().toLocaleTimeString(); })
      .catch(e => { status.textContent = 'update failed: ' + e.message; })
      .finally(() => { pending = null; });
  });
  events.onopen = () => { status.textContent = 'live'; };
  events.onerror = () => { status.textContent = 'reconnecting...'; };
})();
