// Landing: arrow buttons for the featured mentors carousel (touch devices swipe via CSS scroll-snap).
document.querySelectorAll("[data-carousel-prev],[data-carousel-next]").forEach((btn) => {
  const name = btn.dataset.carouselPrev || btn.dataset.carouselNext;
  const track = document.getElementById(`carousel-${name}`);
  if (!track) return;
  btn.addEventListener("click", () => {
    const step = track.clientWidth * 0.8;
    track.scrollBy({ left: btn.dataset.carouselPrev ? -step : step, behavior: "smooth" });
  });
});
