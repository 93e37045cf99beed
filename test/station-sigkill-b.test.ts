import { sigkillShare } from './station-sigkill-lib.ts';

// 10 of the 50 kills (station-sigkill-a..e share them; scripts/soak.ts runs all 50 in one go).
sigkillShare({ kills: 10, seed: 2018 });
