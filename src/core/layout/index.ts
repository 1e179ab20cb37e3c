// The layout room: where everything lives under data/, creating it (init), the .gitignore block, and
// recognising the old layout and old settings. Its only door.
export * from './paths.js';
export * from './init.js';
export * from './gitignore.js';
export * from './oldlayout.js';
export * from './settings.js';
