# expect: panic 1
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    .word 0x000290e7 | (1 << 12)
    EXPECT_PANIC_TAIL
TEST_END
