// Offsets of the structs the vector kernels read (lanes.go), checked by
// TestScoreLanesLayout; lanes_avx512_amd64.s and lanes_avx2_amd64.s include it.

// laneViewer's fields (lanes.go).
#define V_INVNORM 112
#define V_INDUSTRY 120
#define V_INTERESTS 128
#define V_LOOKINGFOR 136
#define V_OFFERING 144
#define V_W_INTERESTS 152
#define V_W_COMPLEMENTARY 160
#define V_W_BIO 168
#define V_W_INDUSTRY 176
#define V_ONE 184
#define V_HALF 192
#define V_RECIPROCALS 200

// scoreLanes' fields: word k of the eight members is at 64·k.
#define L_INVNORM 896
#define L_INDUSTRY 960
#define L_INTERESTS 992
#define L_LOOKINGFOR 1000
#define L_OFFERING 1008
#define L_SIZE 1024
