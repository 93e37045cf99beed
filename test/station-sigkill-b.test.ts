import { sigkillShare } from './station-sigkill-lib.ts';

// 17 of the 50 kills (station-sigkill-a/b/c share them; the soak runs all 50 in one go).
sigkillShare({ kills: 17, seed: 1018 });
