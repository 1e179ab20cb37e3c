// The config room: the configuration exactly as the app sees it (settings evaluated by the app's Python, or
// emulated), .env parsed as python-dotenv does. Its only door.
export * from './resolve.js';
