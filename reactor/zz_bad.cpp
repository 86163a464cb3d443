int  x;
