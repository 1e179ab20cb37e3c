/** One move of the migration, paths relative to the project root. */
export interface Step {
  id: number;
  what: 'database' | 'backup' | 'migrations' | 'user' | 'rmdir';
  src: string;
  dst: string;
  /** Bytes below src (null when not measured). */
  size: number | null;
  /** The destination already holds identical bytes: the source is dropped after re-checking. */
  identical?: boolean;
  /** Source and destination are on different filesystems: copy, verify, then remove. */
  crossDevice?: boolean;
  /**
   * The source is a user named like a folder the new layout creates (data/db, data/users): it is renamed to
   * the temporary dst before the layout exists, and a second step moves it on into data/users/.
   */
  aside?: boolean;
  /** For the second step of a set-aside user: where the user was (src is the temporary name). */
  from?: string;
  /** Mode of a backup file before the move made it private, or of a removed folder (restored by --rollback). */
  mode?: number;
  /** Owner and group of a removed folder (restored by --rollback). */
  owner?: [number, number];
}

/** An entry that stays where it is, and why. */
export interface LeftEntry {
  entry: string;
  reason: string;
}

/** A settings file edit. */
export interface SettingsEdit {
  file: string;
  diff: string;
}

/** The whole migration plan, as printed by --dry-run and recorded in the journal. */
export interface Plan {
  version: 1;
  created: string;
  steps: Step[];
  left: LeftEntry[];
  unknown: LeftEntry[];
  settings: SettingsEdit[];
  gitignore: 'added' | 'updated' | 'unchanged';
  /** Reasons the plan cannot run; any stops the run before the first move. */
  conflicts: string[];
  warnings: string[];
  users: string[];
  /** Layout folders the run creates (absent, or taken by a set-aside user): --rollback removes them when empty. */
  layoutCreated?: string[];
  /** Directories created and modes changed, with owners (printed by the plan and the dry run). */
  modeChanges?: string[];
}

/** How users are decided beyond the evidence on disk. */
export interface ClassifyOptions {
  /** Names that are users (--user / --users-from). */
  users?: string[];
  /** Names that are system data, not users (--system). */
  system?: string[];
  /** Also read auth_user from PostgreSQL when it is the configured database. */
  usePostgres?: boolean;
  /** Measure sizes of every step (for the printed plan). */
  sizes?: boolean;
  /** Skip the Django settings update. */
  noSettings?: boolean;
}
