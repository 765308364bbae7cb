/** Tailwind v3 config: scans our templates and page scripts only (nothing from a CDN). */
module.exports = {
  content: ["./templates/**/*.html", "./static/js/**/*.js"],
  theme: {
    // Tailwind's breakpoints, plus md-tall between md and lg (so lg: still wins over it): wide
    // and tall, where the live room's chat sits beside the stage (a phone on its side is wide
    // but short, and keeps its whole width for video)
    screens: {
      sm: "640px",
      md: "768px",
      "md-tall": { raw: "(min-width: 768px) and (min-height: 480px)" },
      lg: "1024px",
      xl: "1280px",
      "2xl": "1536px",
    },
    extend: {
      colors: {
        brand: {
          50: "#eef2ff", 100: "#e0e7ff", 200: "#c7d2fe", 300: "#a5b4fc", 400: "#818cf8",
          500: "#6366f1", 600: "#4f46e5", 700: "#4338ca", 800: "#3730a3", 900: "#312e81",
        },
      },
      fontFamily: {
        // System fonts only: no external font files.
        sans: ["ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "Helvetica Neue", "Arial", "sans-serif"],
      },
    },
  },
  plugins: [],
};
