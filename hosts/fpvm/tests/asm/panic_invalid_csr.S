# expect: panic 1
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    .word 0xb00022f3  # csrrs x5, mcycle, x0
    EXPECT_PANIC_TAIL
TEST_END
