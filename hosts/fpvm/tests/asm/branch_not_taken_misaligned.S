# expect: exit 0
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    .word 0x00101163  # bne x0, x1, +2 with x1 = 0: not taken, no panic

TEST_END
