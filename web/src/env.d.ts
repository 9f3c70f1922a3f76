// esbuild bundles the CSS a module imports (main.tsx: styles.css) into app.css.
declare module "*.css";
