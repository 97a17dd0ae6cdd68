# expect: panic 2
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    .word 0x00000163  # beq x0, x0, +2
    EXPECT_PANIC_TAIL
TEST_END
