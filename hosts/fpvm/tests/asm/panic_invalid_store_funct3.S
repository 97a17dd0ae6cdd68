# expect: panic 1
# fpvm-only
.include "macros.inc"
TEST_BEGIN
    la x5, testdata
    .word 0x0062b023  # STORE funct3 = 3 (sd)
    EXPECT_PANIC_TAIL
TEST_END
