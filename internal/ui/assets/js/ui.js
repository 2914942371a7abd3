// What every page shares: who is signed in, the confirmation dialog and the
// status message.

let identity = null;

export function setIdentity(id) {
  identity = id;
}

export function whoami() {
  return identity;
}

// isAdmin: the token may change things. The page shows change buttons only
// then; the API refuses a read-only token's changes in any case.
export function isAdmin() {
  return !!identity && identity.role === 'admin';
}

// confirm asks in a modal dialog; it resolves true only when the user
// chose the confirming button. Escape and Cancel resolve false.
export function confirm({title, message, ok = 'Confirm', danger = false}) {
  const dlg = document.getElementById('confirm');
  document.getElementById('confirm-title').textContent = title;
  document.getElementById('confirm-message').textContent = message;
  const okBtn = document.getElementById('confirm-ok');
  okBtn.textContent = ok;
  okBtn.className = danger ? 'danger' : 'primary';
  dlg.returnValue = '';
  return new Promise(resolve => {
    dlg.addEventListener('close', () => resolve(dlg.returnValue === 'ok'), {once: true});
    dlg.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}

export function dialogOpen() {
  return document.getElementById('confirm').open;
}

let toastTimer = 0;

// notify shows a short message in the page's status region, which screen
// readers announce.
export function notify(message, {bad = false} = {}) {
  const el = document.getElementById('status');
  el.classList.toggle('bad', bad);
  el.textContent = message;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => { el.textContent = ''; }, bad ? 15000 : 8000);
}
