import { sigkillShare } from './station-sigkill-lib.ts';

// 16 of the 50 kills (station-sigkill-a/b/c share them; the soak runs all 50 in one go).
sigkillShare({ kills: 16, seed: 2018 });
