// Service worker: shows system notifications the page hands it while the tab is hidden,
// and focuses (or opens) PeerLearn when one is clicked. No third-party push service.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  const link = new URL(event.notification.data?.link || "/", self.location.origin).href;
  event.waitUntil((async () => {
    const windows = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
    for (const w of windows) {
      if (new URL(w.url).origin === self.location.origin) {
        await w.focus();
        return w.navigate ? w.navigate(link).catch(() => undefined) : undefined;
      }
    }
    return self.clients.openWindow(link);
  })());
});
