/** A progress ticker for long work; a no-op where progress is not shown. */
export interface Progress {
  tick(bytes: number, files?: number): void;
  done(): void;
}

/** What the core reports through; the CLI decides where (if anywhere) it goes. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
  progress(label: string, totalBytes: number, totalFiles?: number): Progress;
  /** True when progress() draws something: callers may then spend a little work on exact totals. */
  showsProgress?: boolean;
}
